package testenv

import (
	"errors"
	"testing"
)

// TestStandInGuard: a benchmark about to run on an embedded stand-in fails unless
// MONITOR_BENCH_EMBEDDED=1 allows it; a test is never stopped.
func TestStandInGuard(t *testing.T) {
	down := errors.New("connection refused")
	bench := func() testing.BenchmarkResult {
		return testing.Benchmark(func(b *testing.B) {
			standIn(b, "miniredis", "Redis at 127.0.0.1:1", down)
		})
	}
	t.Setenv(BenchEmbedded, "")
	if r := bench(); r.N != 0 {
		t.Errorf("without %s=1 the benchmark ran %d iterations on the stand-in", BenchEmbedded, r.N)
	}
	t.Setenv(BenchEmbedded, "1")
	if r := bench(); r.N == 0 {
		t.Errorf("with %s=1 the benchmark did not run", BenchEmbedded)
	}
	standIn(t, "miniredis", "Redis at 127.0.0.1:1", down) // a test goes on
}
