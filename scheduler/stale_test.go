package scheduler

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	dto "github.com/prometheus/client_model/go"

	"monitor/internal/testenv"
	"monitor/task"
)

func TestParseTaskID(t *testing.T) {
	j := Job{Type: task.TypeSweep, Schedule: mustSchedule(t, "1m")}
	at := time.Date(2026, 3, 1, 8, 0, 42, 0, time.UTC)
	tick, ok := ParseTaskID(j.Type, TaskID(j, at))
	if !ok || !tick.Equal(at.Truncate(time.Minute)) {
		t.Errorf("ParseTaskID(%q) = %v, %v; want %v", TaskID(j, at), tick, ok, at.Truncate(time.Minute))
	}
	for _, id := range []string{
		"", "0b6a3c1e-3f9b-4c2e-9d1a-1f2e3d4c5b6a", task.TypeSweep, task.TypeSweep + ":",
		task.TypeSweep + ":manual", task.TypeCommandSync + ":2026-03-01T08:00:00Z",
	} {
		if _, ok := ParseTaskID(j.Type, id); ok {
			t.Errorf("ParseTaskID(%q) is a tick of %s", id, j.Type)
		}
	}
}

// TestRecordTickIgnoresFutureTick: a tick recorded beyond the recorder's clock plus
// MaxClockSkew (a host whose clock jumped forward) is overwritten, not obeyed.
func TestRecordTickIgnoresFutureTick(t *testing.T) {
	rdb := testenv.NewRedis(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		recorded time.Time
		stale    bool
	}{
		{now.Add(-time.Minute), false},
		{now, false},
		{now.Add(time.Minute), true},
		{now.Add(MaxClockSkew), true},
		{now.Add(MaxClockSkew + time.Second), false},
		{now.AddDate(4, 0, 0), false},
	} {
		if err := rdb.Client.Set(ctx, LastTickKey("job:x"), tc.recorded.Unix(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		_, stale, err := recordTick(ctx, rdb.Client, "job:x", now, now)
		if err != nil {
			t.Fatal(err)
		}
		want := tc.recorded
		if !tc.stale {
			want = now
		}
		got, err := rdb.Client.Get(ctx, LastTickKey("job:x")).Int64()
		if err != nil {
			t.Fatal(err)
		}
		if stale != tc.stale || got != want.Unix() {
			t.Errorf("recorded %v: stale %v, key %v; want %v, %v", tc.recorded, stale, time.Unix(got, 0).UTC(), tc.stale, want)
		}
	}
}

// skipped reads the skip counter of jobType.
func skipped(t *testing.T, jobType string) float64 {
	t.Helper()
	var m dto.Metric
	if err := staleSkipped.WithLabelValues(jobType).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// runs records the task ids a handler body ran for.
type runs struct {
	mu  sync.Mutex
	ids []string
}

func (r *runs) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	id, _ := asynq.GetTaskID(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	return nil
}

func (r *runs) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// backlog lets a real Scheduler fire a 1s job into the paused periodic queue until at
// least n ticks wait, stops it, and returns the waiting task ids in tick order.
func backlog(t *testing.T, rdb *testenv.Redis, insp *asynq.Inspector, j Job, n int) []string {
	t.Helper()
	if err := insp.PauseQueue(task.QueuePeriodic); err != nil {
		t.Fatal(err)
	}
	s, err := New(rdb.Opt(), Options{Jobs: []Job{j}, Redis: rdb.Client, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	pending := func() []*asynq.TaskInfo {
		infos, err := insp.ListPendingTasks(task.QueuePeriodic, asynq.PageSize(100))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		return infos
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Shutdown()
		}
	}()
	testenv.WaitFor(t, 20*time.Second, "the scheduler to enqueue a backlog", func() bool { return len(pending()) >= n })
	s.Shutdown()
	stopped = true
	var ids []string
	for _, ti := range pending() {
		ids = append(ids, ti.ID)
	}
	slices.Sort(ids) // RFC 3339 in UTC sorts as time
	return ids
}

// drain runs a real asynq server with handler h on the periodic queue, unpauses the
// queue and waits until every task of it is processed.
func drain(t *testing.T, rdb *testenv.Redis, insp *asynq.Inspector, h asynq.Handler, total int) *asynq.QueueInfo {
	t.Helper()
	mux := asynq.NewServeMux()
	mux.Handle(task.TypeSweep, h)
	srv := asynq.NewServer(rdb.Opt(), asynq.Config{
		Concurrency: 4, Queues: map[string]int{task.QueuePeriodic: 1}, LogLevel: asynq.WarnLevel,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	if err := insp.UnpauseQueue(task.QueuePeriodic); err != nil {
		t.Fatal(err)
	}
	var qi *asynq.QueueInfo
	testenv.WaitFor(t, 20*time.Second, "the periodic queue to drain", func() bool {
		var err error
		if qi, err = insp.GetQueueInfo(task.QueuePeriodic); err != nil {
			t.Fatal(err)
		}
		return qi.Pending == 0 && qi.Active == 0 && qi.Processed >= total
	})
	return qi
}

// TestResumedBacklogRunsNewestTickOnly: a real Scheduler fills the paused periodic
// queue with several ticks of one job; once the queue is resumed, a real server runs
// the job's body for the newest tick only, and the older ticks complete without
// running: none fails, is retried or archived. Tasks enqueued by hand (a random id, or
// an id that is no tick) always run.
func TestResumedBacklogRunsNewestTickOnly(t *testing.T) {
	rdb := testenv.NewRedis(t)
	insp := asynq.NewInspector(rdb.Opt())
	defer func() {
		if err := insp.Close(); err != nil {
			t.Error(err)
		}
	}()
	j := Job{Type: task.TypeSweep, Schedule: mustSchedule(t, "1s")}
	ids := backlog(t, rdb, insp, j, 4)
	newest := ids[len(ids)-1]

	body := &runs{}
	skippedBefore := skipped(t, j.Type)
	h := SkipStale(body, SkipOptions{Redis: rdb.Client, Logger: testenv.Logger(t)})
	qi := drain(t, rdb, insp, h, len(ids))
	if got := body.list(); !slices.Equal(got, []string{newest}) {
		t.Errorf("backlog of %d ticks %v: the body ran for %v, want only the newest %s", len(ids), ids, got, newest)
	}
	if qi.Failed != 0 || qi.Retry != 0 || qi.Archived != 0 || qi.Processed != len(ids) {
		t.Errorf("queue after the backlog: processed %d, failed %d, retry %d, archived %d; want %d processed, no failure",
			qi.Processed, qi.Failed, qi.Retry, qi.Archived, len(ids))
	}
	if got := skipped(t, j.Type) - skippedBefore; got != float64(len(ids)-1) {
		t.Errorf("skip counter rose by %v, want %d", got, len(ids)-1)
	}

	// Runs enqueued by hand, after the newest tick ran: never skipped.
	client := asynq.NewClient(rdb.Opt())
	defer func() {
		if err := client.Close(); err != nil {
			t.Error(err)
		}
	}()
	manual, err := client.Enqueue(asynq.NewTask(j.Type, nil), asynq.Queue(task.QueuePeriodic))
	if err != nil {
		t.Fatal(err)
	}
	named, err := client.Enqueue(asynq.NewTask(j.Type, nil), asynq.Queue(task.QueuePeriodic), asynq.TaskID(j.Type+":by-hand"))
	if err != nil {
		t.Fatal(err)
	}
	if err := insp.PauseQueue(task.QueuePeriodic); err != nil {
		t.Fatal(err)
	}
	drain(t, rdb, insp, h, len(ids)+2)
	want := []string{newest, manual.ID, named.ID}
	if got := body.list(); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("after two runs by hand the body ran for %v, want %v", got, want)
	}
}

// TestResumedBacklogWithoutSkipStale is the control: the same backlog, handled without
// SkipStale, runs the body once per tick.
func TestResumedBacklogWithoutSkipStale(t *testing.T) {
	rdb := testenv.NewRedis(t)
	insp := asynq.NewInspector(rdb.Opt())
	defer func() {
		if err := insp.Close(); err != nil {
			t.Error(err)
		}
	}()
	j := Job{Type: task.TypeSweep, Schedule: mustSchedule(t, "1s")}
	ids := backlog(t, rdb, insp, j, 3)
	body := &runs{}
	drain(t, rdb, insp, body, len(ids))
	if got := body.list(); len(got) != len(ids) {
		t.Errorf("without SkipStale the body ran %d times for %d ticks, want once per tick", len(got), len(ids))
	}
}
