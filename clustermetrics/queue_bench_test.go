package clustermetrics

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"monitor/internal/testenv"
)

// BenchmarkScrape1M measures one uncached read of the ingest queue holding 1,000,000
// aggregating reports, spread over 16 groups (the default) or 1,024 (the most
// MONITOR_INGEST_GROUPS allows), beside asynq's Inspector.GetQueueInfo on the same
// backlog. The groups are filled with task ids directly (ZADD), as asynq's AddToGroup
// would, with task hashes only for the tasks GetQueueInfo samples.
//
//	MONITOR_TEST_REAL=1 go test -run '^$' -bench Scrape1M -benchtime 20x ./clustermetrics
func BenchmarkScrape1M(b *testing.B) {
	for _, groups := range []int{16, 1024} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			r := testenv.NewRedis(b)
			ctx := context.Background()
			const reports = 1_000_000
			now := float64(time.Now().Unix())
			for start := 0; start < reports; start += 20_000 {
				pipe := r.Client.Pipeline()
				for i := start; i < start+20_000; i++ {
					g := "shard-" + strconv.Itoa(i%groups)
					pipe.ZAdd(ctx, "asynq:{ingest}:g:"+g, redisZ(now, "task-"+strconv.Itoa(i)))
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
			for g := range groups {
				name := "shard-" + strconv.Itoa(g)
				if err := r.Client.SAdd(ctx, "asynq:{ingest}:groups", name).Err(); err != nil {
					b.Fatal(err)
				}
				// GetQueueInfo's memory estimate opens the first 20 tasks of its first 5 groups
				// and fails on a missing one: give those their hashes.
				ids, err := r.Client.ZRange(ctx, "asynq:{ingest}:g:"+name, 0, 19).Result()
				if err != nil {
					b.Fatal(err)
				}
				for _, id := range ids {
					if err := r.Client.HSet(ctx, "asynq:{ingest}:t:"+id, "msg", make([]byte, 120), "state", "aggregating", "group", name).Err(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := r.Client.SAdd(ctx, "asynq:queues", "ingest").Err(); err != nil {
				b.Fatal(err)
			}
			c, err := NewQueueCollector(r.Client, QueueOptions{Queues: []string{"ingest"}})
			if err != nil {
				b.Fatal(err)
			}
			b.Run("collector", func(b *testing.B) {
				for b.Loop() {
					snap, err := c.readAll(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if got := snap.queues[0].sizes[6]; got != reports {
						b.Fatalf("aggregating %d, want %d", got, reports)
					}
				}
			})
			insp := asynq.NewInspectorFromRedisClient(r.Client)
			b.Run("asynq-GetQueueInfo", func(b *testing.B) {
				for b.Loop() {
					info, err := insp.GetQueueInfo("ingest")
					if err != nil {
						b.Fatal(err)
					}
					if info.Aggregating != reports {
						b.Fatalf("aggregating %d, want %d", info.Aggregating, reports)
					}
				}
			})
		})
	}
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
