//go:build chaos

package chaos

import (
	"fmt"
	"testing"
	"time"
)

// TestSIGTERMEachRoleUnderLoad is scenario 7: SIGTERM to the api, then a worker, then
// the scheduler, each under load. Each exits 0 within its shutdown timeout (10 s here),
// the API answers what it took before it stops, and nothing acknowledged is lost.
func TestSIGTERMEachRoleUnderLoad(t *testing.T) {
	t.Parallel()
	s := newStack(t, redisConfig{})
	apiAddr := "MONITOR_HTTP_ADDR=" + freeAddrString(t)
	api := s.start("api", apiAddr)
	w := s.start("worker")
	sched := s.start("scheduler")
	const limit = 10*time.Second + time.Second // MONITOR_SHUTDOWN_TIMEOUT, and a second for the process to exit
	l := steady(t, api.url, 2000, 500, 40*time.Second)
	var notes []string
	stop := func(p *proc) {
		took, err := p.terminate(limit)
		if err != nil {
			t.Errorf("monitor %s after SIGTERM: %v (took %v)\n%s", p.role, err, took, tail(p.out, 3000))
		}
		notes = append(notes, fmt.Sprintf("%s exited in %.1f s", p.role, took.Seconds()))
	}
	time.Sleep(8 * time.Second)
	stop(api)
	s.start("api", apiAddr) // the terminals' requests meanwhile failed; they are not acknowledged
	time.Sleep(8 * time.Second)
	stop(w)
	time.Sleep(3 * time.Second)
	s.start("worker")
	time.Sleep(5 * time.Second)
	stop(sched)
	o := check(t, s, l, "7 SIGTERM to api, worker and scheduler under load", 3*time.Minute)
	o.Note = fmt.Sprint(notes)
	record(t, o)
}
