package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkStatusUploadCommands measures the report path (decode, validate, enqueue on
// Redis, record last seen and look up the open command in one script call) with none and
// with 10% of 10,000 devices holding an open command, side by side. The interleaved
// sub-benchmark alternates the two variants request by request (each on its own Redis
// db) and is the one to compare on a shared machine; commands=0% and commands=10% run
// each variant alone:
//
//	MONITOR_TEST_REAL=1 go test ./api -run '^$' -bench StatusUploadCommands -benchtime 2s -count 5
func BenchmarkStatusUploadCommands(b *testing.B) {
	const devices = 10_000
	bodies := make([]string, devices)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"sn":"SN%06d","pos":"P1","city":"0371","id":"B503","unum1":3,"unum2":0,`+
			`"ndate":"2026-03-01","ntime":"08:%02d:%02d","amount":1200,"count":7,"line":12,"stime":"06:00:00",`+
			`"ctime":"08:00:00","tenant":7}`, i, i/60%60, i%60)
	}
	// server returns the handler of an API on a Redis db of its own where pct% of the
	// devices hold an open command.
	server := func(b *testing.B, pct int) http.Handler {
		h := newHarness(b)
		open := map[string]uint64{}
		for i := 0; i < devices*pct/100; i++ {
			open[fmt.Sprintf("SN%06d", i*100/pct)] = uint64(i + 1)
		}
		if err := h.srv.opt.Fleet.SetOpen(context.Background(), open); err != nil {
			b.Fatal(err)
		}
		return h.srv.Handler()
	}
	post := func(h http.Handler, body string) (cmd bool, err error) {
		req := httptest.NewRequest(http.MethodPost, "/open/statusUpload", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return false, fmt.Errorf("status %d: %s", rec.Code, rec.Body)
		}
		return strings.Contains(rec.Body.String(), `"cmd":1`), nil
	}
	// interleaved alternates the two variants request by request, so the machine's
	// load, which drifts, weighs on both alike; it reports each variant's mean latency.
	b.Run("interleaved", func(b *testing.B) {
		hs := [2]http.Handler{server(b, 0), server(b, 10)}
		var next atomic.Int64
		var nanos, count [2]atomic.Int64
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := next.Add(1)
				v := int(n % 2)
				start := time.Now()
				if _, err := post(hs[v], bodies[(n/2)%devices]); err != nil {
					b.Error(err)
					return
				}
				nanos[v].Add(int64(time.Since(start)))
				count[v].Add(1)
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		mean := func(v int) float64 { return float64(nanos[v].Load()) / float64(max(count[v].Load(), 1)) }
		b.ReportMetric(mean(0)/1e3, "µs/report-0%")
		b.ReportMetric(mean(1)/1e3, "µs/report-10%")
		b.ReportMetric(mean(1)/mean(0), "ratio-10%/0%")
	})
	for _, pct := range []int{0, 10} {
		b.Run(fmt.Sprintf("commands=%d%%", pct), func(b *testing.B) {
			h := server(b, pct)
			var next, withCmd atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					cmd, err := post(h, bodies[next.Add(1)%devices])
					if err != nil {
						b.Error(err)
						return
					}
					if cmd {
						withCmd.Add(1)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
			if got, want := float64(withCmd.Load())/float64(b.N), float64(pct)/100; b.N >= devices && (got < want-0.01 || got > want+0.01) {
				b.Fatalf("%.1f%% of replies carried a command, want %d%%", got*100, pct)
			}
		})
	}
}
