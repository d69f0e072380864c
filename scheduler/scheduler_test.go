package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/goleak"

	"monitor/internal/testenv"
	"monitor/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustSchedule(t *testing.T, s string) Schedule {
	t.Helper()
	sc, err := ParseSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestTaskIDIsPerTick(t *testing.T) {
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		spec       string
		a, b       time.Duration // two firings, offsets from base
		sameTaskID bool
	}{
		{"1m", 2 * time.Second, 59 * time.Second, true},
		{"1m", 59 * time.Second, 61 * time.Second, false},
		{"5m", 0, 4*time.Minute + 59*time.Second, true},
		{"*/5 * * * *", 100 * time.Millisecond, 30 * time.Second, true},
		{"*/5 * * * *", 0, 5 * time.Minute, false},
	} {
		j := Job{Type: task.TypeSweep, Schedule: mustSchedule(t, tc.spec)}
		a, b := TaskID(j, base.Add(tc.a)), TaskID(j, base.Add(tc.b))
		if (a == b) != tc.sameTaskID {
			t.Errorf("%s: ids %s and %s, want same=%v", tc.spec, a, b, tc.sameTaskID)
		}
	}
}

// TestEnqueueTwiceInOneTick drives the scheduler's enqueue path the way two replicas do
// in one period: the second enqueue of the tick conflicts.
func TestEnqueueTwiceInOneTick(t *testing.T) {
	rdb := testenv.NewRedis(t)
	client := asynq.NewClient(rdb.Opt())
	defer func() {
		if err := client.Close(); err != nil {
			t.Error(err)
		}
	}()
	j := Job{Type: task.TypeSweep, Schedule: mustSchedule(t, "1m")}
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	enqueue := func(at time.Time) error {
		_, err := client.Enqueue(asynq.NewTask(j.Type, nil), asynq.TaskID(TaskID(j, at)),
			asynq.Queue(task.QueuePeriodic), asynq.Retention(j.Schedule.Interval(at)))
		return err
	}
	if err := enqueue(base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := enqueue(base.Add(40 * time.Second)); !errors.Is(err, asynq.ErrTaskIDConflict) {
		t.Fatalf("second replica in the same tick: %v, want ErrTaskIDConflict", err)
	}
	if err := enqueue(base.Add(61 * time.Second)); err != nil {
		t.Fatalf("next tick: %v", err)
	}
}

// TestTwoSchedulersEnqueueEachTickOnce runs two real Scheduler instances of one job on
// one Redis until both have fired in the same ticks. Their clocks record every enqueue
// attempt (the scheduler reads its clock once per firing, for the TaskID) and their
// logs every outcome: each tick attempted must be in Redis exactly once, as one task per
// distinct tick, every attempt beyond the first of a tick must have met
// ErrTaskIDConflict, and no enqueue may have failed otherwise.
func TestTwoSchedulersEnqueueEachTickOnce(t *testing.T) {
	rdb := testenv.NewRedis(t)
	j := Job{Type: task.TypeSweep, Schedule: mustSchedule(t, "1s"), Timeout: time.Minute}
	var mu sync.Mutex
	attempts := [2][]time.Time{} // per scheduler, the clock readings of its firings
	var out outcomes
	var scheds [2]*asynq.Scheduler
	for i := range scheds {
		recording := false
		now := func() time.Time {
			at := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if recording {
				attempts[i] = append(attempts[i], at)
			}
			return at
		}
		s, err := New(rdb.Opt(), Options{Jobs: []Job{j}, Now: now, Logger: slog.New(out.handler(testenv.Logger(t).Handler()))})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		recording = true // from here on the clock is read only by firings
		mu.Unlock()
		scheds[i] = s
	}
	for _, s := range scheds {
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
	}
	shutdown := sync.OnceFunc(func() {
		for _, s := range scheds {
			s.Shutdown() // waits for firings in progress
		}
	})
	t.Cleanup(func() {
		// A firing stuck on its job's lock would hang Shutdown: report, and leak instead.
		if !t.Failed() {
			shutdown()
		}
	})
	ticksOf := func(ats []time.Time) map[string]int {
		ids := map[string]int{}
		for _, at := range ats {
			ids[TaskID(j, at)]++
		}
		return ids
	}
	testenv.WaitFor(t, 20*time.Second, "both schedulers to fire in two common ticks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		a, b := ticksOf(attempts[0]), ticksOf(attempts[1])
		common := 0
		for id := range a {
			if b[id] > 0 {
				common++
			}
		}
		return common >= 2
	})
	shutdown()

	insp := asynq.NewInspector(rdb.Opt())
	defer func() {
		if err := insp.Close(); err != nil {
			t.Error(err)
		}
	}()
	infos, err := insp.ListPendingTasks(task.QueuePeriodic, asynq.PageSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for _, ti := range infos {
		stored[ti.ID]++
		if ti.Retention != time.Second {
			t.Errorf("task %s: retention %v, want the period", ti.ID, ti.Retention)
		}
	}
	mu.Lock()
	all := append(slices.Clone(attempts[0]), attempts[1]...)
	mu.Unlock()
	ticks := ticksOf(all)
	for id, n := range ticks {
		if stored[id] != 1 {
			t.Errorf("tick %s attempted %d times, in Redis %d times; want once", id, n, stored[id])
		}
	}
	if len(infos) != len(ticks) {
		t.Errorf("%d tasks in Redis for %d distinct ticks (%d attempts): want one task per tick", len(infos), len(ticks), len(all))
	}
	if got := out.count(msgEnqueued); got != len(ticks) {
		t.Errorf("%d enqueues succeeded, want one per tick: %d", got, len(ticks))
	}
	if got := out.count(msgConflict); got != len(all)-len(ticks) {
		t.Errorf("%d enqueues met ErrTaskIDConflict, want every repeat attempt of a tick: %d", got, len(all)-len(ticks))
	}
	if got := out.count(msgFailed); got != 0 {
		t.Errorf("%d enqueues failed", got)
	}
}

// The messages of the scheduler's PostEnqueueFunc, by outcome.
const (
	msgEnqueued = "enqueued periodic job"
	msgConflict = "periodic job already enqueued for this tick by another scheduler"
	msgFailed   = "enqueue periodic job"
)

// outcomes counts the log records of the scheduler's enqueue outcomes.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) count(msg string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[msg]
}

func (o *outcomes) handler(next slog.Handler) slog.Handler { return countingHandler{next, o} }

type countingHandler struct {
	slog.Handler
	o *outcomes
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.o.mu.Lock()
	if h.o.n == nil {
		h.o.n = map[string]int{}
	}
	h.o.n[r.Message]++
	h.o.mu.Unlock()
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(as), h.o}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(name), h.o}
}

// TestHungEnqueueStallsOnlyItsJob holds one job's enqueue on its way to Redis (a proxy
// keeps the request from Redis, as a hung connection would): the other job must still
// be enqueued on its following ticks, and the held job resumes once Redis answers.
func TestHungEnqueueStallsOnlyItsJob(t *testing.T) {
	rdb := testenv.NewRedis(t)
	const stalled, free = "test:stalled", "test:free"
	proxy := testenv.NewHoldProxy(t, rdb.Addr, stalled) // the first write naming the stalled job
	jobs := []Job{
		{Type: stalled, Schedule: mustSchedule(t, "1s"), Timeout: time.Minute},
		{Type: free, Schedule: mustSchedule(t, "1s"), Timeout: time.Minute},
	}
	// The read timeout is what ends a hung enqueue; it lies well beyond the waits below,
	// so nothing but the held job's own lock is released meanwhile.
	s, err := New(asynq.RedisClientOpt{Addr: proxy.Addr(), DB: rdb.DB, ReadTimeout: time.Minute},
		Options{Jobs: jobs, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proxy.Release() // the held enqueue must finish before Shutdown can
		s.Shutdown()
	})
	insp := asynq.NewInspector(rdb.Opt()) // straight to Redis, not through the proxy
	t.Cleanup(func() {
		if err := insp.Close(); err != nil {
			t.Error(err)
		}
	})
	enqueued := func(typ string) int {
		infos, err := insp.ListPendingTasks(task.QueuePeriodic, asynq.PageSize(100))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		n := 0
		for _, ti := range infos {
			if ti.Type == typ {
				n++
			}
		}
		return n
	}

	<-proxy.Held() // the stalled job's first enqueue is in flight, unanswered
	before := enqueued(free)
	testenv.WaitFor(t, 10*time.Second, "the free job to be enqueued while the other job's enqueue hangs", func() bool {
		return enqueued(free) > before
	})
	if n := enqueued(stalled); n != 0 {
		t.Fatalf("%d tasks of the stalled job in Redis while its enqueue is held", n)
	}
	proxy.Release()
	testenv.WaitFor(t, 10*time.Second, "the stalled job's enqueue to complete once Redis answers", func() bool {
		return enqueued(stalled) > 0
	})
}
