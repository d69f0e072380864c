package app

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"monitor/config"
	"monitor/internal/testenv"
	"monitor/scheduler"
	"monitor/task"
)

// skippedStale reads monitor_periodic_stale_skipped_total of jobType from the default registry.
func skippedStale(t *testing.T, jobType string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "monitor_periodic_stale_skipped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && l.GetValue() == jobType {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestWorkerSkipsStaleTicks: each periodic job's handler, as the worker registers it,
// completes without running a tick older than the job's recorded newest tick.
func TestWorkerSkipsStaleTicks(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.OperatorToken = "operator-token" // roleAll builds the API too
	p, err := build(t.Context(), roleAll, cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.close(); err != nil {
			t.Error(err)
		}
	}()
	client := asynq.NewClient(p.redis.ConnOpt)
	defer func() {
		if err := client.Close(); err != nil {
			t.Error(err)
		}
	}()
	now := time.Now().UTC().Truncate(time.Minute)
	jobs := []string{task.TypeSweep, task.TypeCommandSync, task.TypeLogPull, task.TypeRetention}
	before := map[string]float64{}
	for _, typ := range jobs {
		before[typ] = skippedStale(t, typ)
		// As a scheduler records it on enqueueing the newer tick.
		if err := p.redis.Client.Set(t.Context(), scheduler.LastTickKey(typ), now.Unix(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		j := scheduler.Job{Type: typ, Schedule: scheduler.Schedule{Every: time.Minute}}
		if _, err := client.Enqueue(asynq.NewTask(typ, nil), asynq.Queue(task.QueuePeriodic),
			asynq.TaskID(scheduler.TaskID(j, now.Add(-time.Minute)))); err != nil {
			t.Fatal(err)
		}
	}
	// roleAll builds a scheduler too: started and shut down so that its Redis client is closed.
	if err := p.scheduler.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.scheduler.Shutdown()
	if err := p.worker.Start(p.workerMux); err != nil {
		t.Fatal(err)
	}
	defer p.worker.Shutdown()
	for _, typ := range jobs {
		testenv.WaitFor(t, 20*time.Second, typ+"'s stale tick to be skipped", func() bool {
			return skippedStale(t, typ) == before[typ]+1
		})
	}
}

// TestSchedulerRecordsEnqueuedTicks: the scheduler, as built from the configuration,
// records each enqueued tick where the workers' SkipStale reads it.
func TestSchedulerRecordsEnqueuedTicks(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SweepEvery = "1s"
	p, err := build(t.Context(), roleScheduler, cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.close(); err != nil {
			t.Error(err)
		}
	}()
	if err := p.scheduler.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.scheduler.Shutdown()
	testenv.WaitFor(t, 10*time.Second, "the sweep's tick to be recorded", func() bool {
		n, err := p.redis.Client.Exists(t.Context(), scheduler.LastTickKey(task.TypeSweep)).Result()
		return err == nil && n == 1
	})
}
