package task

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"monitor/internal/testenv"
	"monitor/model"
)

// TestBatchEnqueuerReleasesEveryPlace: after a storm of reports with two batches in flight
// per queue and a linger after every stored batch, each queue is back at rest: nothing in
// flight, nothing lingering, nothing gathering. A lingering batch that held two places,
// or left twice, shows here.
func TestBatchEnqueuerReleasesEveryPlace(t *testing.T) {
	rds := testenv.NewRedis(t)
	e, err := NewBatchEnqueuer(asynq.NewClientFromRedisClient(rds.Client), BatchEnqueuerOptions{
		Ingest: Ingest{Queues: 2}, MaxReports: 8, MaxInFlight: 2, Linger: time.Millisecond, LingerFrom: 1, LingerReports: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 40 {
				r := model.Report{SN: fmt.Sprintf("RP%02d%03d", g, i), NDate: "2026-11-28", NTime: "04:00:00", AcceptedAt: time.Now()}
				if err := e.Enqueue(t.Context(), &r, ""); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// A sender closes its batch's done before it gives its place back: allow it that moment.
	deadline := time.Now().Add(2 * time.Second)
	for _, q := range e.queues {
		for {
			q.mu.Lock()
			inFlight, lingering, gathering := q.inFlight, q.linger != nil, q.next != nil
			q.mu.Unlock()
			if inFlight == 0 && !lingering && !gathering {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue %s at rest: %d in flight, lingering %v, gathering %v", q.name, inFlight, lingering, gathering)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
