package app

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"monitor/alert"
	"monitor/clustermetrics"
	"monitor/config"
	"monitor/scheduler"
	"monitor/task"
	"monitor/worker"
)

// roleMetrics sets up the metrics of role r: each process shows only the metrics of what
// it runs, with the Go and process collectors. It returns the registry that a role
// without the API serves on MONITOR_METRICS_ADDR, and nil for a role with the API.
//
// The API's metrics are registered on Prometheus's default registry (promauto) and the
// API serves that registry, so `monitor all` adds the workers' metrics to it. The
// worker and scheduler roles get a registry of their own, without the API's counters,
// which would be stuck at 0 in a process that serves no API.
func roleMetrics(r role) (*prometheus.Registry, error) {
	if r.api() {
		cs := alert.DecommissionCollectors() // the API decommissions devices too
		if r.worker() {
			cs = workerCollectors()
		}
		for _, c := range cs {
			// Run may run more than once in a test process; the collectors are the same.
			var already prometheus.AlreadyRegisteredError
			if err := prometheus.Register(c); err != nil && !errors.As(err, &already) {
				return nil, fmt.Errorf("register worker metrics: %w", err)
			}
		}
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	cs := []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	if r.worker() {
		cs = append(cs, workerCollectors()...)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return reg, nil
}

// registererOf is where the process registers its metrics: reg from roleMetrics, or for
// a process with the API (reg nil) the default registry, which the API serves.
func registererOf(reg *prometheus.Registry) prometheus.Registerer {
	if reg == nil {
		return prometheus.DefaultRegisterer
	}
	return reg
}

// workerCollectors are the metrics of what runs in a worker process: the batch writer,
// the notifier, the periodic jobs' stale-tick skipping and the sweep's decommissions.
func workerCollectors() []prometheus.Collector {
	return slices.Concat(worker.Collectors(), scheduler.Collectors(), alert.Collectors(), alert.DecommissionCollectors())
}

// queueNames are the asynq queues monitor uses under cfg, all of which the queue metrics
// cover.
func queueNames(cfg *config.Config) []string {
	return append(ingest(cfg).QueueNames(), task.QueuePeriodic, task.QueueNotify)
}

// registerClusterMetrics registers on reg the metrics of what the shared stores hold:
// the queues, periodic ticks and Redis memory from Redis, and, in a process with the
// database, the fleet from it. Every replica serves the same values, read at most once
// per cache period each; dashboards take the max across replicas. Closing p unregisters
// them, so a later Run in the same process registers its own.
func (p *process) registerClusterMetrics(cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) error {
	sched, err := schedulerOptions(cfg, log)
	if err != nil {
		return err
	}
	now := time.Now()
	jobs := make([]clustermetrics.Job, 0, len(sched.Jobs))
	for _, j := range sched.Jobs {
		jobs = append(jobs, clustermetrics.Job{Type: j.Type, Period: j.Schedule.Interval(now), TickKey: scheduler.LastTickKey(j.Type)})
	}
	queues, err := clustermetrics.NewQueueCollector(p.redis.Client, clustermetrics.QueueOptions{Queues: queueNames(cfg), Discover: task.IsIngestQueue, Jobs: jobs, Logger: log})
	if err != nil {
		return err
	}
	cs := []prometheus.Collector{queues}
	if p.db != nil {
		fleet, err := clustermetrics.NewFleetCollector(p.db, clustermetrics.FleetOptions{OfflineAfter: cfg.OfflineAfter, Logger: log})
		if err != nil {
			return err
		}
		cs = append(cs, fleet)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register cluster metrics: %w", err)
		}
		p.onClose(func() error {
			reg.Unregister(c)
			return nil
		})
	}
	return nil
}
