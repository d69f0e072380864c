package chaos

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRedisFullShedsAndRecovers is scenario 10: a Redis with maxmemory and noeviction,
// no worker while terminals report, so the backlog grows until the API sheds at its
// share of maxmemory (503, and /readyz says so). Then a worker starts while terminals
// keep reporting: it must drain (it has the headroom the API left it), and ingest must
// come back on its own.
func TestRedisFullShedsAndRecovers(t *testing.T) {
	t.Parallel()
	// held is how long the API sheds, terminals still posting, before a worker starts.
	// A report takes 90-600 bytes of Redis in batch tasks (more in the small batches of a
	// light load, less when batches grow), so 2,000 a second fill 80% of 12 MiB in 8-50 s:
	// the test waits up to two thirds of d for it. Each second adds at most 1.2 MB (10% of
	// maxmemory), which the API's once-a-second reading may overshoot the share by, and the
	// worker's connections take about 30 KB each (up to 32 for asynq, 1 MiB): the 20% of
	// headroom must hold both.
	maxmemory, rate, d, held := int64(12<<20), 2000.0, 120*time.Second, 5*time.Second
	if full {
		maxmemory, rate, d, held = 32<<20, 3000, 150*time.Second, 10*time.Second
	}
	s := newStack(t, redisConfig{MaxMemory: maxmemory}, "MONITOR_REDIS_SHED_SHARE=0.8")
	api := s.start("api")
	l := steady(t, api.url, 2000, rate, d)

	ready := watchReady(t, api.url+"/readyz", l.done)
	if !waitUntil(t.Context(), d*2/3, func() bool { return ready.saw(http.StatusServiceUnavailable) }) {
		t.Fatalf("/readyz never reported Redis full within %v (%d%% of %d bytes)", d*2/3, 80, maxmemory)
	}
	body := ready.lastBody()
	if !strings.Contains(body, "memory limit") {
		t.Errorf("/readyz while shedding: %s, want it to name the memory limit", body)
	}
	time.Sleep(held)
	if !strings.Contains(ready.lastBody(), "memory limit") {
		t.Errorf("/readyz stopped reporting the memory limit with no worker draining: %s", ready.lastBody())
	}
	workerAt := time.Now()
	w := s.start("worker")
	res := l.wait(t)
	if res.Statuses["503"] == 0 {
		t.Errorf("no report was refused with 503: Redis never filled (%+v)", res)
	}
	recovered := ready.firstAfter(workerAt, http.StatusOK)
	if recovered.IsZero() || recovered.After(l.started.Add(time.Duration(res.SendSeconds*float64(time.Second)))) {
		t.Errorf("ingest did not come back while terminals were still reporting (ready again at %v, sending ended after %.1fs)", recovered, res.SendSeconds)
	}
	o := check(t, s, l, "10 Redis full (maxmemory, noeviction), workers start late", 3*time.Minute)
	if strings.Contains(w.out.String(), "OOM command not allowed") {
		t.Logf("the worker met OOM errors (it recovered):\n%s", grepLines(w.out.String(), "OOM"))
	}
	o.Note = fmt.Sprintf("%d MiB maxmemory, shed at 80%%, worker started after %v of shedding: %d answered 503; ready again %.1f s after the worker started",
		maxmemory>>20, held, res.Statuses["503"], recovered.Sub(workerAt).Seconds())
	record(t, o)
}

// readyWatch polls /readyz every 100 ms and keeps the status changes.
type readyWatch struct {
	mu      sync.Mutex
	changes []readyChange
	body    string
}

type readyChange struct {
	at     time.Time
	status int
}

func watchReady(t *testing.T, url string, until <-chan struct{}) *readyWatch {
	w := &readyWatch{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := http.Client{Timeout: 2 * time.Second}
		for {
			select {
			case <-until:
				return
			case <-time.After(100 * time.Millisecond):
			}
			resp, err := c.Get(url)
			if err != nil {
				continue
			}
			var b strings.Builder
			buf := make([]byte, 512)
			n, _ := resp.Body.Read(buf)
			b.Write(buf[:n])
			_ = resp.Body.Close()
			w.mu.Lock()
			if len(w.changes) == 0 || w.changes[len(w.changes)-1].status != resp.StatusCode {
				w.changes = append(w.changes, readyChange{time.Now(), resp.StatusCode})
			}
			w.body = b.String()
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { <-done })
	return w
}

func (w *readyWatch) saw(status int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		if c.status == status {
			return true
		}
	}
	return false
}

func (w *readyWatch) lastBody() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.body
}

// firstAfter returns when the status first became status after t; zero when it did not.
func (w *readyWatch) firstAfter(t time.Time, status int) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		if c.at.After(t) && c.status == status {
			return c.at
		}
	}
	return time.Time{}
}

func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
		if len(out) == 10 {
			break
		}
	}
	return strings.Join(out, "\n")
}
