package chaos

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"monitor/task"
)

// TestPoisonTasks is scenario 8: while reports flow, undecodable tasks are put on the
// ingest queue: report items inside every aggregation group (their batch-mates must
// land, then their batch is archived with SkipRetry, showing the item in asynqmon),
// and a batch that holds nothing decodable, archived at once instead of retried.
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
	// Every undecodable item ends archived in its batch, after its batch-mates landed,
	// and so does the batch with nothing decodable; none of them is retried.
	var archived []*asynq.TaskInfo
	poisonItems := func() int {
		archived, err = insp.ListArchivedTasks(task.QueueIngest, asynq.PageSize(1000))
		if err != nil {
			return -1
		}
		n := 0
		for _, ti := range archived {
			if err := task.SplitBatch(ti.Payload, func(item []byte) {
				if _, rest, err := task.DecodeReport(item); err != nil || len(rest) > 0 {
					n++
				}
			}); err != nil {
				n++ // the junk batch: its framing breaks
			}
		}
		return n
	}
	if !waitUntil(t.Context(), 30*time.Second, func() bool { return poisonItems() == groups+1 }) {
		t.Fatalf("archived: %d poison items, want the %d items and the junk batch (%v)", poisonItems(), groups, err)
	}
	for _, ti := range archived {
		if ti.Retried != 0 || !strings.Contains(ti.LastErr, "undecodable") && !strings.Contains(ti.LastErr, "no decodable report") {
			t.Errorf("archived batch %s retried %d times, last error %q: want archived at once as undecodable", ti.ID, ti.Retried, ti.LastErr)
		}
	}
	if !slices.ContainsFunc(archived, func(ti *asynq.TaskInfo) bool { return ti.ID == batch.ID }) {
		t.Error("the junk batch is not archived")
	}
	if n := strings.Count(w.out.String(), "drop undecodable batch item"); n < groups {
		t.Errorf("%d undecodable items logged, want %d", n, groups)
	}
	o.Note = fmt.Sprintf("%d batches archived after 0 retries, holding the 16 poison items and the junk batch; every batch-mate stored", len(archived))
	record(t, o)
}
