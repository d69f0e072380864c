package app

import (
	"runtime/debug"
	"strings"
)

// Garbage-collector settings of the long-running roles, unless GOGC or GOMEMLIMIT says
// otherwise. Every report allocates a little in the HTTP server, the JSON decoder and
// the enqueue, so under load the default GOGC=100 spends a noticeable share of the CPU
// on collections; 200 halves their number (in make bench about 10-20% less CPU per
// report). The soft memory limit keeps the larger heap within the process's budget:
// near it the collector runs as often as it must.
const (
	gcPercent   = 200
	memoryLimit = 96 << 20
)

// tuneGC applies the defaults above to whatever environ leaves unset.
func tuneGC(environ []string) {
	var gogc, limit bool
	for _, kv := range environ {
		gogc = gogc || strings.HasPrefix(kv, "GOGC=")
		limit = limit || strings.HasPrefix(kv, "GOMEMLIMIT=")
	}
	if !gogc {
		debug.SetGCPercent(gcPercent)
	}
	if !limit {
		debug.SetMemoryLimit(memoryLimit)
	}
}
