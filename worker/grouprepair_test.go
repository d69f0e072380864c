package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"monitor/internal/testenv"
	"monitor/task"
)

// TestGroupRepairRelistsAGroupAKilledAggregationLeft builds the state a worker killed
// in the middle of an aggregation leaves (the group's tasks moved into an aggregation
// set past its deadline, the group no longer listed) and starts a real asynq server on
// it. asynq's recoverer moves the tasks back into the group but never lists it, so the
// reports stay unwritten; GroupRepair lists it again and the batch lands.
func TestGroupRepairRelistsAGroupAKilledAggregationLeft(t *testing.T) {
	rdb := testenv.NewRedis(t)
	db := testenv.NewDB(t).DB
	ctx := context.Background()
	client := asynq.NewClient(rdb.Opt())
	defer client.Close()
	now := time.Now()
	for i := range 5 {
		r := report(fmt.Sprintf("AGG%d", i), "10:00:00", now)
		if _, err := client.Enqueue(task.Ingest{Queues: 1, Groups: 1}.NewReportTask(&r)); err != nil {
			t.Fatal(err)
		}
	}
	// What asynq v0.26's aggregation check does before the killed worker would have
	// enqueued the batch: the tasks into a set of their own, the emptied group unlisted.
	const group, prefix = "shard-0", "asynq:{" + task.QueueIngest + "}:"
	set := prefix + "g:" + group + ":killed-aggregation"
	members, err := rdb.Client.ZRangeWithScores(ctx, prefix+"g:"+group, 0, -1).Result()
	if err != nil || len(members) != 5 {
		t.Fatalf("group holds %v (%v), want the 5 reports", members, err)
	}
	if _, err := rdb.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, set, members...)
		p.Del(ctx, prefix+"g:"+group)
		p.ZAdd(ctx, prefix+"aggregation_sets", redis.Z{Score: float64(now.Add(-time.Second).Unix()), Member: set})
		p.SRem(ctx, prefix+"groups", group)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	startBatchServer(t, rdb, db, ServerOptions{})
	// The recoverer runs at start: the tasks go back into the group, which stays unlisted.
	testenv.WaitFor(t, 10*time.Second, "the recoverer to move the tasks back", func() bool {
		n, err := rdb.Client.ZCard(ctx, prefix+"g:"+group).Result()
		return err == nil && n == 5
	})
	time.Sleep(3 * time.Second) // three aggregation checks (grace period 1 s)
	if n := count(t, db, "tb_status"); n != 0 {
		t.Fatalf("%d rows written with the group unlisted: asynq relists it itself, so the repair is not needed", n)
	}

	repair, err := NewGroupRepair(rdb.Client, GroupRepairOptions{Queues: []string{task.QueueIngest}, Groups: []string{group, "shard-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := repair.Repair(ctx); err != nil || n != 1 {
		t.Fatalf("Repair = %d, %v; want the one group listed again", n, err)
	}
	testenv.WaitFor(t, 20*time.Second, "the 5 reports in tb_status", func() bool { return count(t, db, "tb_status") == 5 })
	if n, err := repair.Repair(ctx); err != nil || n != 0 {
		t.Fatalf("second Repair = %d, %v; want nothing to do", n, err)
	}
}

// TestGroupRepairStartStopTwice: a second Start while running starts no second loop (one
// Stop ends it, goleak checks), and a second Stop is harmless.
func TestGroupRepairStartStopTwice(t *testing.T) {
	rdb := testenv.NewRedis(t)
	r, err := NewGroupRepair(rdb.Client, GroupRepairOptions{Queues: []string{task.QueueIngest}, Groups: []string{"shard-0"}, Every: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	r.Start()
	for range 2 {
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}
