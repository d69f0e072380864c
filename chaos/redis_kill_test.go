package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"monitor/simulate"
)

// TestRedisKilledUnderLoad is scenario 5: Redis is killed with SIGKILL under load and
// started again from its AOF, once with appendfsync everysec and once with always.
// Requests during the outage get 503 (or no answer), never 200, and every report
// acknowledged before the kill lands. A burst on a fresh stack of each measures what
// always costs in throughput.
func TestRedisKilledUnderLoad(t *testing.T) {
	t.Parallel()
	for _, fsync := range []string{"everysec", "always"} {
		t.Run(fsync, func(t *testing.T) {
			s := newStack(t, redisConfig{AppendFsync: fsync})
			api := s.start("api")
			s.start("worker")
			rate, d, burst := 200.0, 15*time.Second, 3000
			if full {
				rate, d, burst = 1000, 30*time.Second, 30000
			}
			// Throughput first, on the idle stack: a burst, as fast as 32 connections go.
			b, err := simulate.Simulate(t.Context(), simulate.Options{URL: api.url, Devices: burst, Concurrency: 32,
				Mode: "burst", SNPrefix: simulate.RandomPrefix(), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if b.Accepted != burst {
				t.Fatalf("burst: %d of %d accepted before any fault: %v %s", b.Accepted, burst, b.Statuses, b.FirstError)
			}

			l := steady(t, api.url, 1000, rate, d)
			time.Sleep(d / 3)
			s.redis.kill(t)
			killed := time.Now()
			// While Redis is down no report may be acknowledged.
			down := startLoad(t, simulate.Options{URL: api.url, Devices: 50, Concurrency: 4, Mode: "steady", Rate: 50,
				Duration: 2 * time.Second, SNPrefix: simulate.RandomPrefix(), Timeout: 3 * time.Second, Client: "std",
				AckFile: filepath.Join(t.TempDir(), "acked-down")})
			dr := down.wait(t)
			if dr.Accepted != 0 {
				t.Errorf("%d reports acknowledged while Redis was down", dr.Accepted)
			}
			if dr.Statuses["503"] == 0 {
				t.Errorf("no 503 while Redis was down: %v transport %d (%s)", dr.Statuses, dr.TransportErrors, dr.FirstError)
			}
			time.Sleep(time.Until(killed.Add(3 * time.Second)))
			s.redis.start(t)
			if !waitUntil(context.Background(), 20*time.Second, func() bool { return answers(api.url + "/readyz") }) {
				t.Error("/readyz did not come back within 20 s of Redis")
			}
			res := l.wait(t)
			o := check(t, s, l, "5 Redis SIGKILL for 3 s under load, restarted from AOF, appendfsync "+fsync, 4*time.Minute)
			o.Note = fmt.Sprintf("%d refused while down (%d with 503); burst of %d: %.0f reports/s acknowledged", res.Sent-res.Accepted,
				res.Statuses["503"], burst, b.AcceptedPerSec)
			record(t, o)
		})
	}
}
