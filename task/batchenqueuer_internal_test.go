package task

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

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

// TestBatchEnqueuerGathersWhileABatchIsOnItsWay: the reports that arrive while their
// queue's batch is on its way to Redis leave together as the next batch, one task, not a
// task each. The first batch is held on a proxy until the ten have joined the next.
func TestBatchEnqueuerGathersWhileABatchIsOnItsWay(t *testing.T) {
	rds := testenv.NewRedis(t)
	proxy := testenv.NewHoldProxy(t, rds.Addr, "HOLDME")
	rc := testenv.NewRedisClient(t, &redis.Options{Addr: proxy.Addr(), DB: rds.DB})
	e, err := NewBatchEnqueuer(asynq.NewClientFromRedisClient(rc), BatchEnqueuerOptions{Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	send := func(sn string) {
		wg.Go(func() {
			r := model.Report{SN: sn, NDate: "2026-11-28", NTime: "04:00:00", AcceptedAt: time.Now()}
			if err := e.Enqueue(t.Context(), &r, ""); err != nil {
				t.Error(err)
			}
		})
	}
	send("HOLDME")
	<-proxy.Held()
	for i := range 10 {
		send(fmt.Sprintf("GW%02d", i))
	}
	q := e.queues[0]
	for deadline := time.Now().Add(5 * time.Second); ; {
		q.mu.Lock()
		gathered := 0
		if q.next != nil {
			gathered = q.next.reports
		}
		q.mu.Unlock()
		if gathered == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 10 reports gathered behind the held batch", gathered)
		}
		time.Sleep(5 * time.Millisecond)
	}
	proxy.Release()
	wg.Wait()
	infos, err := asynq.NewInspectorFromRedisClient(rds.Client).ListPendingTasks(QueueIngest)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, ti := range infos {
		n := 0
		if err := SplitBatch(ti.Payload, func([]byte) { n++ }); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{1, 10}) {
		t.Fatalf("tasks of %v reports, want the held one alone and the ten together: [1 10]", sizes)
	}
}
