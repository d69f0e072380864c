package app

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"monitor/config"
	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"
)

// TestWorkerDrainsLeftoverIngestQueues: reports queued under a former
// MONITOR_INGEST_QUEUES (here the one queue "ingest") are still written by a worker that
// starts with another count, so changing the count strands nothing.
func TestWorkerDrainsLeftoverIngestQueues(t *testing.T) {
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "monitor worker needs a MySQL database")
		return
	}
	rdb := testenv.NewRedis(t)
	client := asynq.NewClient(rdb.Opt())
	report := &model.Report{SN: "LEFT0001", NDate: "2021-08-07", NTime: "18:30:30", City: "0371", AcceptedAt: time.Now().UTC()}
	if _, err := client.Enqueue(task.Ingest{Queues: 1, Groups: 4}.NewReportTask(report)); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.RedisAddr, cfg.RedisDB, cfg.MySQLDSN = rdb.Addr, rdb.DB, db.DSN
	cfg.IngestQueues = 3
	startWorker(t, cfg)
	testenv.WaitFor(t, 20*time.Second, "the report of the former queue to land", func() bool {
		var n int64
		return db.DB.Model(&model.Status{}).Where("sn = ?", "LEFT0001").Count(&n).Error == nil && n == 1
	})
}

// startWorker builds and starts the worker role of cfg; the test's cleanup shuts it down
// and closes its clients.
func startWorker(t *testing.T, cfg *config.Config) *process {
	t.Helper()
	p, err := build(t.Context(), roleWorker, cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.close(); err != nil {
			t.Error(err)
		}
	})
	if err := p.worker.Start(p.workerMux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.worker.Shutdown)
	return p
}
