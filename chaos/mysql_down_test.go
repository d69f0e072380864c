package chaos

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"monitor/task"
)

// TestMySQLDownUnderLoad is scenario 3: MariaDB is killed under load and started again
// 30 s later. The API keeps acknowledging (it needs only Redis), batches fail and retry
// with backoff, and everything lands once when the database is back.
func TestMySQLDownUnderLoad(t *testing.T) {
	t.Parallel()
	s := newStack(t, redisConfig{})
	api := s.start("api")
	w := s.start("worker")
	rate, d, down := 150.0, 45*time.Second, 30*time.Second
	if full {
		rate = 1000
	}
	l := steady(t, api.url, 1000, rate, d)
	time.Sleep(5 * time.Second)
	s.maria.kill(t)
	time.Sleep(down)
	s.maria.start(t)
	res := l.wait(t)
	if res.Accepted != res.Sent {
		t.Errorf("the API refused %d of %d reports while only MySQL was down: %v %s", res.Sent-res.Accepted, res.Sent, res.Statuses, res.FirstError)
	}
	o := check(t, s, l, "3 MySQL killed for 30 s under load", 4*time.Minute)
	o.Note = fmt.Sprintf("the API answered %d of %d with 200 during the outage", res.Accepted, res.Sent)
	record(t, o)
	if !strings.Contains(w.out.String(), "task failed") {
		t.Error("no batch failed while MySQL was down: the outage tested nothing")
	}
}

// TestMySQLDownPastRetryFor is scenario 4: MariaDB stays down longer than
// MONITOR_BATCH_RETRY_FOR, so batches are archived, not dropped; running them again
// through asynqmon's HTTP API (the operator's path) lands each report once.
func TestMySQLDownPastRetryFor(t *testing.T) {
	t.Parallel()
	s := newStack(t, redisConfig{}, "MONITOR_BATCH_RETRY_FOR=4s")
	api := s.start("api")
	s.start("worker")
	rate, d := 200.0, 8*time.Second
	if full {
		rate, d = 1000, 20*time.Second
	}
	s.maria.kill(t)
	l := steady(t, api.url, 1000, rate, d)
	l.wait(t)
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: s.redis.addr})
	defer insp.Close()
	// Wait until nothing is left but archived batches.
	var q *asynq.QueueInfo
	if !waitUntil(t.Context(), 2*time.Minute, func() bool {
		var err error
		q, err = insp.GetQueueInfo(task.QueueIngest)
		return err == nil && q.Archived > 0 && q.Size == q.Archived && q.Aggregating == 0
	}) {
		t.Fatalf("batches were not archived within 2 minutes: %+v", q)
	}
	s.maria.start(t)
	l.drainFrom = time.Now()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		api.url+"/monitoring/api/queues/"+task.QueueIngest+"/archived_tasks:run_all", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("asynqmon run all archived: %s", resp.Status)
	}
	o := check(t, s, l, "4 MySQL down past MONITOR_BATCH_RETRY_FOR (4 s), archived batches run from asynqmon", 2*time.Minute)
	o.Note = fmt.Sprintf("%d batches archived, none dropped; drain counted from asynqmon's run-all", q.Archived)
	record(t, o)
}
