package redispipe_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"

	"monitor/internal/redispipe"
	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"
)

// BenchmarkEnqueue enqueues reports from 256 goroutines, as the API does under a burst,
// straight through asynq's client and through redispipe.New.
func BenchmarkEnqueue(b *testing.B) {
	for _, mode := range []string{"asynq", "pipelined"} {
		b.Run(mode, func(b *testing.B) {
			rds := testenv.NewRedis(b)
			var client *asynq.Client
			if mode == "pipelined" {
				client = asynq.NewClientFromRedisClient(redispipe.New(rds.Client))
			} else {
				client = asynq.NewClientFromRedisClient(rds.Client)
			}
			r := model.Report{SN: "BENCH", NDate: "2024-01-01", NTime: "00:00:00"}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for range 256 {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						r := r
						r.SN = fmt.Sprint("BENCH", next.Load()%1000)
						if _, err := client.EnqueueContext(b.Context(), task.Ingest{Queues: 1, Groups: 16}.NewReportTask(&r)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
