package worker

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"monitor/config"
	"monitor/internal/asynqlog"
	"monitor/task"
)

// batchTimeout bounds one attempt at writing a batch.
const batchTimeout = 2 * time.Minute

// maxBatchDelay caps the backoff between attempts at a batch, so a database that comes
// back is written to within minutes.
const maxBatchDelay = 2 * time.Minute

// NewServer returns the asynq server that aggregates report groups into batches and runs
// every task handler. It is started and stopped by the caller.
func NewServer(opt asynq.RedisConnOpt, cfg *config.Config, log *slog.Logger) *asynq.Server {
	maxRetry := BatchMaxRetry(cfg.BatchRetryFor)
	return asynq.NewServer(opt, asynq.Config{
		Concurrency: cfg.WorkerConcurrency,
		// Weighted, not strict: a report backlog must not starve the sweep or alerts.
		Queues: map[string]int{task.QueueIngest: 6, task.QueuePeriodic: 3, task.QueueNotify: 2},
		GroupAggregator: asynq.GroupAggregatorFunc(func(_ string, tasks []*asynq.Task) *asynq.Task {
			return task.NewStatusBatchTask(tasks, asynq.MaxRetry(maxRetry), asynq.Timeout(batchTimeout))
		}),
		GroupMaxSize:     cfg.GroupMaxSize,
		GroupMaxDelay:    cfg.GroupMaxDelay,
		GroupGracePeriod: cfg.GroupGracePeriod,
		RetryDelayFunc:   RetryDelay,
		ShutdownTimeout:  cfg.ShutdownTimeout,
		Logger:           asynqlog.New(log),
		LogLevel:         asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			retried, _ := asynq.GetRetryCount(ctx)
			limit, _ := asynq.GetMaxRetry(ctx)
			id, _ := asynq.GetTaskID(ctx)
			log.Error("task failed", "type", t.Type(), "id", id, "retried", retried, "max_retry", limit, "err", err)
		}),
	})
}

// RetryDelay is the backoff between attempts: exponential from one second, capped at
// maxBatchDelay, with jitter so batches failed by one outage do not return in lockstep.
func RetryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	d := batchDelay(n)
	return d/2 + rand.N(d/2+1)
}

func batchDelay(n int) time.Duration {
	if n >= 7 {
		return maxBatchDelay
	}
	return min(time.Second<<n, maxBatchDelay)
}

// BatchMaxRetry returns how many retries the worst-case backoff needs to span d, so a
// batch outlives a database outage of that length before it is archived.
func BatchMaxRetry(d time.Duration) int {
	var total time.Duration
	n := 0
	for ; total < d; n++ {
		total += batchDelay(n) / 2 // the shortest jittered delay
	}
	return n
}
