package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"monitor/task"
)

// TestPoisonTasks is scenario 8: while reports flow, undecodable tasks are put on the
// ingest queue: report items inside every aggregation group (their batch-mates must
// land and the poison item is dropped and logged), and a batch that holds nothing
// decodable, which is archived at once with SkipRetry instead of being retried.
func TestPoisonTasks(t *testing.T) {
	t.Parallel()
	s := newStack(t, redisConfig{})
	api := s.start("api")
	w := s.start("worker")
	rate, d := 200.0, 10*time.Second
	if full {
		rate, d = 1000, 30*time.Second
	}
	l := steady(t, api.url, 1000, rate, d)
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: s.redis.addr})
	defer client.Close()
	time.Sleep(d / 3)
	const groups = 16 // MONITOR_INGEST_GROUPS's default
	for g := range groups {
		poison := asynq.NewTask(task.TypeStatusReport, []byte("\xffpoison report"), asynq.Queue(task.QueueIngest),
			asynq.Group(fmt.Sprintf("shard-%d", g)))
		if _, err := client.Enqueue(poison); err != nil {
			t.Fatal(err)
		}
	}
	batch, err := client.Enqueue(asynq.NewTask(task.TypeStatusBatch, []byte("\x05junk"), asynq.Queue(task.QueueIngest), asynq.MaxRetry(20)))
	if err != nil {
		t.Fatal(err)
	}
	o := check(t, s, l, "8 poison tasks: 16 undecodable report items and one undecodable batch", 2*time.Minute)
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: s.redis.addr})
	defer insp.Close()
	var info *asynq.TaskInfo
	if !waitUntil(t.Context(), 30*time.Second, func() bool {
		info, err = insp.GetTaskInfo(task.QueueIngest, batch.ID)
		return err == nil && info.State == asynq.TaskStateArchived
	}) {
		t.Fatalf("the undecodable batch is not archived: %+v %v", info, err)
	}
	if info.Retried != 0 || !strings.Contains(info.LastErr, "no decodable report") {
		t.Errorf("the undecodable batch was retried %d times, last error %q: want archived at once as undecodable", info.Retried, info.LastErr)
	}
	if n := strings.Count(w.out.String(), "drop undecodable batch item"); n < groups {
		t.Errorf("%d undecodable items logged, want %d", n, groups)
	}
	o.Note = "the undecodable batch archived after 0 retries; each poison item dropped and logged, its batch-mates stored"
	record(t, o)
}
