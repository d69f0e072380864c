package worker

import (
	"maps"
	"testing"

	"monitor/task"
)

// TestQueueWeights: one queue keeps 6:3:2; with more, every ingest queue weighs the same
// and the periodic and notify queues keep their shares of the whole.
func TestQueueWeights(t *testing.T) {
	if got, want := QueueWeights(1), map[string]int{"ingest": 6, "periodic": 3, "notify": 2}; !maps.Equal(got, want) {
		t.Fatalf("one queue: %v, want %v", got, want)
	}
	for _, n := range []int{2, 6, task.MaxIngestQueues} {
		w := QueueWeights(n)
		if len(w) != n+2 {
			t.Fatalf("%d queues: %d weights", n, len(w))
		}
		ingest := 0
		for _, q := range (task.Ingest{Queues: n}).QueueNames() {
			if w[q] != 6 {
				t.Fatalf("%d queues: %s weighs %d, want 6 like every ingest queue", n, q, w[q])
			}
			ingest += w[q]
		}
		// The shares of one queue's 6:3:2, exactly.
		if w[task.QueuePeriodic]*6 != ingest*3 || w[task.QueueNotify]*6 != ingest*2 {
			t.Fatalf("%d queues: ingest %d, periodic %d, notify %d: not 6:3:2", n, ingest, w[task.QueuePeriodic], w[task.QueueNotify])
		}
	}
}
