package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"monitor/internal/asynqlog"
	"monitor/internal/logctx"
	"monitor/task"
)

// maxRetryDelay caps the backoff between attempts at a task, so a database or webhook
// that comes back is used again within minutes.
const maxRetryDelay = 2 * time.Minute

// ServerOptions configures NewServer.
type ServerOptions struct {
	// IngestQueues is the number of ingest queues (task.Ingest.Queues); default 1.
	IngestQueues int
	// LeftoverQueues are ingest queues of a former count that still hold reports: they
	// are processed too, at weight 1, so a change of the count strands nothing.
	LeftoverQueues []string
	// Concurrency is the number of tasks run at once; default 256. Batch tasks waiting
	// for their joint write hold their slots, so it bounds how many share one.
	Concurrency int
	// GroupMaxSize, GroupMaxDelay and GroupGracePeriod tune the aggregation of a group of
	// reports into one batch (asynq.Config); defaults 2000, 2s and 1s.
	GroupMaxSize     int
	GroupMaxDelay    time.Duration
	GroupGracePeriod time.Duration
	// BatchRetryFor is how long a failing batch is retried before it is archived; default 2h.
	BatchRetryFor time.Duration
	// ShutdownTimeout is how long Shutdown waits for running tasks; default 25s.
	ShutdownTimeout time.Duration
	// Logger receives asynq's warnings and every task failure; nil discards them.
	Logger *slog.Logger
}

func (o ServerOptions) withDefaults() (ServerOptions, error) {
	o.Concurrency = cmp.Or(o.Concurrency, 256)
	o.IngestQueues = cmp.Or(o.IngestQueues, 1)
	o.GroupMaxSize = cmp.Or(o.GroupMaxSize, 2000)
	o.GroupMaxDelay = cmp.Or(o.GroupMaxDelay, 2*time.Second)
	o.GroupGracePeriod = cmp.Or(o.GroupGracePeriod, time.Second)
	o.BatchRetryFor = cmp.Or(o.BatchRetryFor, 2*time.Hour)
	o.ShutdownTimeout = cmp.Or(o.ShutdownTimeout, 25*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = logctx.Wrap(o.Logger)
	switch {
	case o.IngestQueues < 1 || o.IngestQueues > task.MaxIngestQueues:
		return o, fmt.Errorf("worker: %d ingest queues is not 1-%d", o.IngestQueues, task.MaxIngestQueues)
	case o.Concurrency < 1:
		return o, fmt.Errorf("worker: concurrency %d is below 1", o.Concurrency)
	case o.GroupMaxSize < 1:
		return o, fmt.Errorf("worker: group max size %d is below 1", o.GroupMaxSize)
	case o.GroupGracePeriod < time.Second:
		return o, fmt.Errorf("worker: group grace period %v is below asynq's minimum of 1s", o.GroupGracePeriod)
	case o.GroupMaxDelay < 0 || o.BatchRetryFor < 0 || o.ShutdownTimeout < 0:
		return o, errors.New("worker: negative duration")
	}
	return o, nil
}

// NewServer returns the asynq server that aggregates report groups into batches and runs
// every task handler. It is started and stopped by the caller.
func NewServer(redis asynq.RedisConnOpt, o ServerOptions) (*asynq.Server, error) {
	opt, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opt.Logger
	maxRetry := BatchMaxRetry(opt.BatchRetryFor)
	weights := QueueWeights(opt.IngestQueues)
	for _, q := range opt.LeftoverQueues {
		if _, ok := weights[q]; !ok {
			weights[q] = 1
		}
	}
	return asynq.NewServer(redis, asynq.Config{
		Concurrency: opt.Concurrency,
		Queues:      weights,
		GroupAggregator: asynq.GroupAggregatorFunc(func(_ string, tasks []*asynq.Task) *asynq.Task {
			return task.NewStatusBatchTask(tasks, asynq.MaxRetry(maxRetry), asynq.Timeout(task.BatchTimeout))
		}),
		GroupMaxSize:     opt.GroupMaxSize,
		GroupMaxDelay:    opt.GroupMaxDelay,
		GroupGracePeriod: opt.GroupGracePeriod,
		RetryDelayFunc:   TaskRetryDelay,
		// The API's batches land within a fifth of a second of an idle spell, not asynq's
		// second; an idle worker pays one dequeue per queue each time.
		TaskCheckInterval: 200 * time.Millisecond,
		// A retried task is moved back to pending within a second instead of asynq's 5 s.
		DelayedTaskCheckInterval: time.Second,
		ShutdownTimeout:          opt.ShutdownTimeout,
		Logger:                   asynqlog.New(log),
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			// Each getter's ok is false only outside a task's context, where the zero value is right.
			retried, _ := asynq.GetRetryCount(ctx)
			limit, _ := asynq.GetMaxRetry(ctx)
			log.ErrorContext(ctx, "task failed", "type", t.Type(), "retried", retried, "max_retry", limit, "err", err)
		}),
	}), nil
}

// QueueWeights returns the asynq queue weights of a worker over n ingest queues. They are
// weighted, not strict, so a report backlog never starves the sweep or alerts: every
// ingest queue weighs 6, so a backlog in one does not starve the others, and periodic
// and notify weigh 3n and 2n, keeping the shares of one queue's 6:3:2 whatever n is.
func QueueWeights(n int) map[string]int {
	w := map[string]int{task.QueuePeriodic: 3 * n, task.QueueNotify: 2 * n}
	for _, q := range (task.Ingest{Queues: n}).QueueNames() {
		w[q] = 6
	}
	return w
}

// TaskRetryDelay is the backoff between attempts at any task (batches, periodic jobs and
// notifications): exponential from one second, capped at maxRetryDelay, with jitter so
// tasks failed by one outage do not return in lockstep. A task whose worker died (its
// lease expired) runs again at once: asynq has already waited a minute or more to find
// it, and nothing says the database is failing.
func TaskRetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if errors.Is(err, asynq.ErrLeaseExpired) {
		return 0
	}
	d := backoff(n)
	return d/2 + rand.N(d/2+1)
}

// backoff is the longest delay before retry n+1.
func backoff(n int) time.Duration {
	if n >= 7 {
		return maxRetryDelay
	}
	return min(time.Second<<n, maxRetryDelay)
}

// BatchMaxRetry returns how many retries the worst-case backoff needs to span d, so a
// batch outlives a database outage of that length before it is archived.
func BatchMaxRetry(d time.Duration) int {
	var total time.Duration
	n := 0
	for ; total < d; n++ {
		total += backoff(n) / 2 // the shortest jittered delay
	}
	return n
}
