//go:build chaos

package chaos

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"monitor/simulate"
)

// TestAPIKilledMidRequest is scenario 6: the API is killed with SIGKILL while requests
// are in flight and started again on the same address. Each terminal retries a report
// until it is answered 200, as the contract tells it to; each report, retried or not,
// is stored once.
func TestAPIKilledMidRequest(t *testing.T) {
	t.Parallel()
	s := newStack(t, redisConfig{})
	addr := "MONITOR_HTTP_ADDR=" + freeAddrString(t)
	api := s.start("api", addr)
	s.start("worker")
	const terminals, reports = 50, 100
	l := retrying(t, api.url, terminals, reports, 100*time.Millisecond)
	time.Sleep(5 * time.Second)
	api.kill()
	killed := time.Now()
	time.Sleep(2 * time.Second)
	s.start("api", addr)
	back := time.Since(killed)
	o := check(t, s, l, "6 API SIGKILL mid-request, restarted; terminals retry", 3*time.Minute)
	if l.retries.Load() == 0 {
		t.Error("no request failed: the kill hit no request in flight")
	}
	o.Note = fmt.Sprintf("%d requests failed and were retried until answered 200; API back %.1f s after the kill", l.retries.Load(), back.Seconds())
	record(t, o)
}

func freeAddrString(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

// retrying runs terminals that each send reports reports, one every gap, retrying each
// until it is acknowledged. The acknowledged reports go to the ack file as simulate
// writes it.
func retrying(t *testing.T, url string, terminals, reports int, gap time.Duration) *load {
	prefix := simulate.RandomPrefix()
	l := &load{opts: simulate.Options{SNPrefix: prefix, AckFile: filepath.Join(t.TempDir(), "acked")}, started: time.Now(),
		done: make(chan struct{})}
	go func() {
		defer close(l.done)
		var mu sync.Mutex
		var acked []string
		var sent atomic.Int64
		c := &http.Client{Timeout: 3 * time.Second}
		var wg sync.WaitGroup
		for d := range terminals {
			wg.Go(func() {
				for k := range reports {
					at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(k) * time.Second)
					sn := fmt.Sprintf("%s%03d", prefix, d)
					body := fmt.Sprintf(`{"sn":%q,"pos":"1","city":"0371","id":"B503","unum1":0,"unum2":0,"ndate":%q,"ntime":%q,"amount":1,"count":1,"line":1,"stime":"05:01:01","ctime":"05:01:01","tenant":0}`,
						sn, at.Format(time.DateOnly), at.Format(time.TimeOnly))
					for {
						sent.Add(1)
						resp, err := c.Post(url+"/open/statusUpload", "application/json", bytes.NewBufferString(body))
						if err == nil {
							_ = resp.Body.Close()
							if resp.StatusCode == http.StatusOK {
								break
							}
						}
						l.retries.Add(1)
						time.Sleep(200 * time.Millisecond)
					}
					mu.Lock()
					acked = append(acked, sn+" "+at.Format(time.DateOnly)+" "+at.Format(time.TimeOnly))
					mu.Unlock()
					time.Sleep(gap)
				}
			})
		}
		wg.Wait()
		var b bytes.Buffer
		for _, a := range acked {
			b.WriteString(a + "\n")
		}
		l.err = os.WriteFile(l.opts.AckFile, b.Bytes(), 0o644)
		l.res = &simulate.Result{Sent: int(sent.Load()), Accepted: len(acked), SendSeconds: time.Since(l.started).Seconds()}
	}()
	t.Cleanup(func() { <-l.done })
	return l
}
