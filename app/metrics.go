package app

import (
	"errors"
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"monitor/alert"
	"monitor/scheduler"
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
		cs := alert.Collectors() // the API decommissions devices too
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

// workerCollectors are the metrics of what runs in a worker process: the batch writer,
// the periodic jobs' stale-tick skipping and the sweep's decommissions.
func workerCollectors() []prometheus.Collector {
	return slices.Concat(worker.Collectors(), scheduler.Collectors(), alert.Collectors())
}
