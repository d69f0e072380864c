package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"

	"monitor/api"
	"monitor/config"
	"monitor/fleet"
	"monitor/internal/testenv"
)

// BenchmarkStatusUploadCommands measures the report path (decode, validate, enqueue on
// Redis, record last seen and look up the open command in one script call) with none and
// with 10% of 10,000 devices holding an open command, side by side:
//
//	MONITOR_TEST_REAL=1 go test ./api -run '^$' -bench StatusUploadCommands -count 5
func BenchmarkStatusUploadCommands(b *testing.B) {
	const devices = 10_000
	db := testenv.NewDB(b).DB
	bodies := make([]string, devices)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"sn":"SN%06d","pos":"P1","city":"0371","id":"B503","unum1":3,"unum2":0,`+
			`"ndate":"2026-03-01","ntime":"08:%02d:%02d","amount":1200,"count":7,"line":12,"stime":"06:00:00",`+
			`"ctime":"08:00:00","tenant":7}`, i, i/60%60, i%60)
	}
	for _, pct := range []int{0, 10} {
		b.Run(fmt.Sprintf("commands=%d%%", pct), func(b *testing.B) {
			rdb := testenv.NewRedis(b)
			cfg := config.Default()
			cfg.OperatorToken = operatorToken
			queue := asynq.NewClient(rdb.Opt())
			srv := api.New(cfg, testenv.Logger(b), queue, rdb.Opt(), rdb.Client, db)
			defer func() {
				if err := srv.Close(); err != nil {
					b.Error(err)
				}
				if err := queue.Close(); err != nil {
					b.Error(err)
				}
			}()
			open := map[string]uint64{}
			for i := 0; i < devices*pct/100; i++ {
				open[fmt.Sprintf("SN%06d", i*100/pct)] = uint64(i + 1)
			}
			if err := fleet.New(rdb.Client, cfg.OfflineAfter).SetOpen(context.Background(), open); err != nil {
				b.Fatal(err)
			}
			h := srv.Handler()
			var next, withCmd atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) % devices
					req := httptest.NewRequest(http.MethodPost, "/open/statusUpload", strings.NewReader(bodies[i]))
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("status %d: %s", rec.Code, rec.Body)
						return
					}
					if strings.Contains(rec.Body.String(), `"cmd":1`) {
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
