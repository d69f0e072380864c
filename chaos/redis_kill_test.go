package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"monitor/simulate"
)

// TestRedisKilledUnderLoad is scenario 5: Redis is killed with SIGKILL under load and
// started again from its AOF, once with appendfsync everysec and once with always.
// Requests during the outage get 503, never 200, and every report acknowledged before
// the kill lands. Before the faults, bursts alternate between the two stacks, side by
// side, to measure what always costs in throughput (median of three rounds each).
func TestRedisKilledUnderLoad(t *testing.T) {
	t.Parallel()
	modes := []string{"everysec", "always"}
	stacks := map[string]*stack{}
	apis := map[string]*proc{}
	for _, fsync := range modes {
		stacks[fsync] = newStack(t, redisConfig{AppendFsync: fsync})
		apis[fsync] = stacks[fsync].start("api")
		stacks[fsync].start("worker")
	}
	burst := 3000
	if full {
		burst = 30000
	}
	rates := map[string][]float64{}
	for range 3 {
		for _, fsync := range modes {
			b, err := simulate.Simulate(t.Context(), simulate.Options{URL: apis[fsync].url, Devices: burst, Concurrency: 32,
				Mode: "burst", SNPrefix: simulate.RandomPrefix(), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if b.Accepted != burst {
				t.Fatalf("burst on %s: %d of %d accepted before any fault: %v %s", fsync, b.Accepted, burst, b.Statuses, b.FirstError)
			}
			rates[fsync] = append(rates[fsync], b.AcceptedPerSec)
		}
	}
	for _, fsync := range modes {
		t.Run(fsync, func(t *testing.T) {
			s, api := stacks[fsync], apis[fsync]
			rate, d := 200.0, 15*time.Second
			if full {
				rate, d = 1000, 30*time.Second
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
			o.Note = fmt.Sprintf("%d refused while down (%d with 503); bursts of %d, side by side: median %.0f reports/s acknowledged (rounds %.0f)",
				res.Sent-res.Accepted, res.Statuses["503"], burst, median(rates[fsync]), rates[fsync])
			record(t, o)
		})
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
