//go:build chaos

package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"monitor/task"
)

// TestMySQLLockedForMinutes is scenario 9: tb_status is locked for two minutes under
// load, so every batch waits. Ingest stays up (every report acknowledged), the backlog
// grows in Redis, and the test reports Redis's memory per queued report.
func TestMySQLLockedForMinutes(t *testing.T) {
	t.Parallel()
	s := newStack(t, redisConfig{})
	api := s.start("api")
	s.start("worker")
	rdb := redis.NewClient(&redis.Options{Addr: s.redis.addr})
	defer rdb.Close()
	before := usedMemory(t, rdb)

	held := lockStatus(t, s, 0)
	const lockFor = 2 * time.Minute
	l := steady(t, api.url, 5000, 500, lockFor-10*time.Second)
	res := l.wait(t)
	if res.Accepted != res.Sent {
		t.Errorf("%d of %d refused while MySQL was only slow: %v %s", res.Sent-res.Accepted, res.Sent, res.Statuses, res.FirstError)
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: s.redis.addr})
	defer insp.Close()
	queued := queuedReports(t, insp)
	during := usedMemory(t, rdb)
	perReport := float64(during-before) / float64(queued)
	held.unlock()
	o := check(t, s, l, "9 tb_status locked for 2 min under load", 4*time.Minute)
	o.Note = fmt.Sprintf("backlog %d reports, %.0f bytes of Redis memory per queued report", queued, perReport)
	record(t, o)
}

// queuedReports counts the reports waiting on the ingest queue: in groups, or in
// batches (each batch's items).
func queuedReports(t *testing.T, insp *asynq.Inspector) int {
	t.Helper()
	groups, err := insp.Groups(task.QueueIngest)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range groups {
		n += g.Size
	}
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){insp.ListPendingTasks, insp.ListActiveTasks, insp.ListRetryTasks} {
		tasks, err := list(task.QueueIngest, asynq.PageSize(100000))
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range tasks {
			if ti.Type != task.TypeStatusBatch {
				continue
			}
			if err := task.SplitBatch(ti.Payload, func([]byte) { n++ }); err != nil {
				t.Fatal(err)
			}
		}
	}
	return n
}

func usedMemory(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(t.Context(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			var n int64
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}
