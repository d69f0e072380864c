package scheduler

import (
	"errors"
	"slices"
	"strings"
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

// TestTwoSchedulersEnqueueEachTickOnce runs two real Scheduler instances on one Redis.
func TestTwoSchedulersEnqueueEachTickOnce(t *testing.T) {
	rdb := testenv.NewRedis(t)
	jobs := []Job{{Type: task.TypeSweep, Schedule: mustSchedule(t, "1s"), Timeout: time.Minute}}
	var scheds []*asynq.Scheduler
	for range 2 {
		s, err := New(rdb.Opt(), Options{Jobs: jobs, Logger: testenv.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		scheds = append(scheds, s)
	}
	start := time.Now()
	time.Sleep(3500 * time.Millisecond)
	for _, s := range scheds {
		s.Shutdown()
	}
	end := time.Now()

	insp := asynq.NewInspector(rdb.Opt())
	defer func() {
		if err := insp.Close(); err != nil {
			t.Error(err)
		}
	}()
	infos, err := insp.ListPendingTasks(task.QueuePeriodic, asynq.PageSize(100))
	if err != nil {
		t.Fatal(err)
	}
	ticks := int(end.Truncate(time.Second).Sub(start.Truncate(time.Second))/time.Second) + 1
	if len(infos) < 2 || len(infos) > ticks {
		t.Fatalf("%d tasks over %d one-second ticks from two schedulers, want each tick once", len(infos), ticks)
	}
	var ids []string
	for _, ti := range infos {
		tick, ok := strings.CutPrefix(ti.ID, task.TypeSweep+":")
		if _, err := time.Parse(time.RFC3339, tick); !ok || err != nil {
			t.Fatalf("task id %q is not job:tick", ti.ID)
		}
		if ti.Retention != time.Second {
			t.Fatalf("retention %v, want the period", ti.Retention)
		}
		ids = append(ids, ti.ID)
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != len(infos) {
		t.Fatalf("a tick was enqueued twice: %v", ids)
	}
}

// TestHungEnqueueStallsOnlyItsJob holds one job's enqueue on its way to Redis (a proxy
// keeps the request from Redis, as a hung connection would): the other job must still
// be enqueued on its following ticks, and the held job resumes once Redis answers.
func TestHungEnqueueStallsOnlyItsJob(t *testing.T) {
	rdb := testenv.NewRedis(t)
	const stalled, free = "test:stalled", "test:free"
	proxy := newHoldProxy(t, rdb.Addr, stalled) // the first write naming the stalled job
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
