//go:build chaos

package chaos

import (
	"fmt"
	"testing"
	"time"
)

// TestOneOfTwoWorkersKilled is scenario 2: two workers share the queues; one is killed
// with SIGKILL while it writes a batch and never comes back. The other carries on
// alone, and its recoverer re-runs the batch the dead one held.
func TestOneOfTwoWorkersKilled(t *testing.T) {
	t.Parallel()
	s := newStack(t, redisConfig{})
	api := s.start("api")
	w1 := s.start("worker")
	rate, d := 1000.0, 30*time.Second
	l := steady(t, api.url, 2000, rate, d)
	time.Sleep(d / 3)
	// The first worker blocks on the lock before the second starts, so it holds a batch
	// when it is killed; the second then blocks too and carries on alone.
	lock := lockStatus(t, s, 1)
	s.start("worker")
	lock.wait(2)
	w1.kill()
	killed := time.Now()
	lock.unlock()
	o := check(t, s, l, "2 one of two workers SIGKILL mid-batch, not restarted", 4*time.Minute)
	o.Note = fmt.Sprintf("the survivor re-ran the dead worker's batch; all stored %.0f s after the kill", time.Since(killed).Seconds())
	record(t, o)
}
