package worker

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the workers' metrics, for the process that runs workers to register
// on the registry its /metrics serves. Nothing registers them on its own.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{reportsStored, reportsDuplicate, itemsBad, batchSeconds, batchReports, ingestLag}
}
