package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// BenchmarkStatusUploadCommands measures the report path as production runs it (decode,
// validate, enqueue on Redis through the pipelined client, record last seen and look up
// the open command in one script call) with none and with 10% of 10,000 devices holding
// an open command, side by side. Every report must be answered 200. The interleaved
// sub-benchmark alternates the two variants request by request (each on its own Redis
// db) and is the one to compare on a shared machine; commands=0% and commands=10% run
// each variant alone:
//
//	MONITOR_TEST_REAL=1 go test ./api -run '^$' -bench StatusUploadCommands -benchtime 2s -count 5
func BenchmarkStatusUploadCommands(b *testing.B) {
	const devices = 10_000
	bodies := make([][]byte, devices)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"sn":"SN%06d","pos":"P1","city":"0371","id":"B503","unum1":3,"unum2":0,`+
			`"ndate":"2026-03-01","ntime":"08:%02d:%02d","amount":1200,"count":7,"line":12,"stime":"06:00:00",`+
			`"ctime":"08:00:00","tenant":7}`, i, i/60%60, i%60)
	}
	target, err := url.Parse("/open/statusUpload")
	if err != nil {
		b.Fatal(err)
	}
	// server returns the handler of an API as the harness builds it (the production
	// pipelined enqueue path) on a Redis db of its own, where pct% of the devices hold an
	// open command. The rate limit is far above what any device sends, so that every
	// report is accepted and enqueued.
	server := func(b *testing.B, pct int) http.Handler {
		h := newHarness(b, func(o *Options) { o.DeviceRate, o.DeviceBurst = 1e6, 1e6 })
		open := map[string]uint64{}
		for i := 0; i < devices*pct/100; i++ {
			open[fmt.Sprintf("SN%06d", i*100/pct)] = uint64(i + 1)
		}
		if err := h.srv.opt.Fleet.SetOpen(context.Background(), open); err != nil {
			b.Fatal(err)
		}
		return h.srv.Handler()
	}
	// post sends the report of device i to h, built from the prepared body and target,
	// and returns whether the reply carried a command. Any answer but 200 fails b.
	var failed atomic.Int64
	post := func(b *testing.B, h http.Handler, i int) (cmd, ok bool) {
		body := bodies[i]
		req := &http.Request{
			Method: http.MethodPost, URL: target, RequestURI: target.Path, Host: "monitor.test",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "192.0.2.1:4000",
			Header:        http.Header{echo.HeaderContentType: {echo.MIMEApplicationJSON}},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			if failed.Add(1) <= 3 {
				b.Errorf("report of SN%06d: status %d %s, want 200", i, rec.Code, rec.Body)
			}
			return false, false
		}
		return !bytes.Equal(rec.Body.Bytes(), okReply), true
	}
	// allAnswered fails b unless each of its b.N reports was answered 200.
	allAnswered := func(b *testing.B, answered int64) {
		if n := failed.Swap(0); n > 0 || answered != int64(b.N) {
			b.Fatalf("%d of %d reports answered 200 (%d failed), want all", answered, b.N, n)
		}
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
				if _, ok := post(b, hs[v], int((n/2)%devices)); !ok {
					return
				}
				nanos[v].Add(int64(time.Since(start)))
				count[v].Add(1)
			}
		})
		b.StopTimer()
		allAnswered(b, count[0].Load()+count[1].Load())
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		mean := func(v int) float64 { return float64(nanos[v].Load()) / float64(max(count[v].Load(), 1)) }
		b.ReportMetric(mean(0)/1e3, "µs/report-0%")
		b.ReportMetric(mean(1)/1e3, "µs/report-10%")
		b.ReportMetric(mean(1)/mean(0), "ratio-10%/0%")
	})
	for _, pct := range []int{0, 10} {
		b.Run(fmt.Sprintf("commands=%d%%", pct), func(b *testing.B) {
			h := server(b, pct)
			var next, answered, withCmd atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					cmd, ok := post(b, h, int(next.Add(1)%devices))
					if !ok {
						return
					}
					answered.Add(1)
					if cmd {
						withCmd.Add(1)
					}
				}
			})
			b.StopTimer()
			allAnswered(b, answered.Load())
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
			if got, want := float64(withCmd.Load())/float64(b.N), float64(pct)/100; b.N >= devices && (got < want-0.01 || got > want+0.01) {
				b.Fatalf("%.1f%% of replies carried a command, want %d%%", got*100, pct)
			}
		})
	}
}
