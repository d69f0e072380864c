package clustermetrics

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"monitor/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCollectorReadsEveryState enqueues tasks into groups and the pending list of a queue
// no worker serves, archives one, pauses the queue and records a tick: every family
// shows the numbers Redis holds, counted by asynq's own Inspector where it has them.
func TestCollectorReadsEveryState(t *testing.T) {
	r := testenv.NewRedis(t)
	ctx := context.Background()
	client := asynq.NewClientFromRedisClient(r.Client)
	for i := range 6 {
		group := []string{"shard-0", "shard-1"}[i%2]
		if _, err := client.EnqueueContext(ctx, asynq.NewTask("status:report", []byte{byte(i)}), asynq.Queue("ingest-a"), asynq.Group(group)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if _, err := client.EnqueueContext(ctx, asynq.NewTask("job", []byte{byte(i)}), asynq.Queue("ingest-a")); err != nil {
			t.Fatal(err)
		}
	}
	archived, err := client.EnqueueContext(ctx, asynq.NewTask("job", []byte("x")), asynq.Queue("ingest-a"))
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(r.Client)
	if err := insp.ArchiveTask("ingest-a", archived.ID); err != nil {
		t.Fatal(err)
	}
	if err := insp.PauseQueue("ingest-a"); err != nil {
		t.Fatal(err)
	}
	tick := time.Now().Add(-90 * time.Second).Unix()
	if err := r.Client.Set(ctx, "monitor:{periodic}:lasttick:job:sweep", tick, 0).Err(); err != nil {
		t.Fatal(err)
	}

	c, err := NewQueueCollector(r.Client, QueueOptions{Queues: []string{"ingest-a", "notify"}, MaxAge: time.Hour,
		Jobs: []Job{{Type: "job:sweep", Period: time.Minute, TickKey: "monitor:{periodic}:lasttick:job:sweep"}}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	info, err := insp.GetQueueInfo("ingest-a")
	if err != nil {
		t.Fatal(err)
	}
	if info.Aggregating != 6 || info.Pending != 2 || info.Archived != 1 {
		t.Fatalf("asynq says aggregating %d pending %d archived %d; the setup is wrong", info.Aggregating, info.Pending, info.Archived)
	}
	want := `
# HELP monitor_queue_size Tasks in the queue by state, read from Redis (the cluster's value: take max across replicas, never sum).
# TYPE monitor_queue_size gauge
monitor_queue_size{queue="ingest-a",state="active"} 0
monitor_queue_size{queue="ingest-a",state="aggregating"} 6
monitor_queue_size{queue="ingest-a",state="archived"} 1
monitor_queue_size{queue="ingest-a",state="completed"} 0
monitor_queue_size{queue="ingest-a",state="pending"} 2
monitor_queue_size{queue="ingest-a",state="retry"} 0
monitor_queue_size{queue="ingest-a",state="scheduled"} 0
monitor_queue_size{queue="notify",state="active"} 0
monitor_queue_size{queue="notify",state="aggregating"} 0
monitor_queue_size{queue="notify",state="archived"} 0
monitor_queue_size{queue="notify",state="completed"} 0
monitor_queue_size{queue="notify",state="pending"} 0
monitor_queue_size{queue="notify",state="retry"} 0
monitor_queue_size{queue="notify",state="scheduled"} 0
# HELP monitor_queue_groups Groups of the queue that hold tasks.
# TYPE monitor_queue_groups gauge
monitor_queue_groups{queue="ingest-a"} 2
monitor_queue_groups{queue="notify"} 0
# HELP monitor_queue_paused 1 when the queue is paused.
# TYPE monitor_queue_paused gauge
monitor_queue_paused{queue="ingest-a"} 1
monitor_queue_paused{queue="notify"} 0
# HELP monitor_periodic_last_tick_timestamp_seconds Newest tick of the periodic job enqueued or started by any scheduler or worker.
# TYPE monitor_periodic_last_tick_timestamp_seconds gauge
monitor_periodic_last_tick_timestamp_seconds{type="job:sweep"} ` + itoa(tick) + `
# HELP monitor_periodic_period_seconds Period of the periodic job's schedule.
# TYPE monitor_periodic_period_seconds gauge
monitor_periodic_period_seconds{type="job:sweep"} 60
# HELP monitor_queue_read_up 1 when the last read of the queues from Redis succeeded.
# TYPE monitor_queue_read_up gauge
monitor_queue_read_up 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "monitor_queue_size", "monitor_queue_groups",
		"monitor_queue_paused", "monitor_periodic_last_tick_timestamp_seconds", "monitor_periodic_period_seconds", "monitor_queue_read_up"); err != nil {
		t.Fatal(err)
	}
	snap := c.cache.val
	q := snap.queues[0]
	// The pending tasks were enqueued moments ago; the aggregating ones too (whole seconds).
	if q.latency <= 0 || q.latency > time.Minute || q.aggregatingAge < 0 || q.aggregatingAge > time.Minute {
		t.Fatalf("latency %v, aggregating age %v", q.latency, q.aggregatingAge)
	}
	// The embedded stand-in (miniredis) has no INFO memory; a real Redis does.
	if snap.memoryKnown != (r.DB > 0) || snap.memoryKnown && snap.redisUsed <= 0 {
		t.Fatalf("redis memory known %v, used %d (db %d)", snap.memoryKnown, snap.redisUsed, r.DB)
	}

	// Cached for MaxAge: a task enqueued now shows only on a fresh read.
	if _, err := client.EnqueueContext(ctx, asynq.NewTask("job", nil), asynq.Queue("ingest-a")); err != nil {
		t.Fatal(err)
	}
	if got := sizeOf(t, reg, "ingest-a", "pending"); got != 2 {
		t.Fatalf("cached pending = %v, want 2", got)
	}
	fresh, err := c.readAll(ctx)
	if err != nil || fresh.queues[0].sizes[0] != 3 {
		t.Fatalf("fresh read: %+v, %v", fresh.queues, err)
	}
}

// TestCollectorBoundsGroups reads at most MaxGroups groups and extrapolates the rest.
func TestCollectorBoundsGroups(t *testing.T) {
	r := testenv.NewRedis(t)
	ctx := context.Background()
	client := asynq.NewClientFromRedisClient(r.Client)
	for i := range 40 {
		group := "shard-" + itoa(int64(i%4))
		if _, err := client.EnqueueContext(ctx, asynq.NewTask("status:report", []byte{byte(i)}), asynq.Queue("ingest"), asynq.Group(group)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewQueueCollector(r.Client, QueueOptions{Queues: []string{"ingest"}, MaxGroups: 2})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.readAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if q := snap.queues[0]; q.groups != 4 || q.sizes[6] != 40 {
		t.Fatalf("groups %d aggregating %d, want 4 and 40 (2 groups of 10 read, scaled by 4/2)", q.groups, q.sizes[6])
	}
}

func TestCollectorReportsAFailedRead(t *testing.T) {
	r := testenv.NewRedis(t)
	c, err := NewQueueCollector(r.Client, QueueOptions{Queues: []string{"ingest"}, Timeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := "# HELP monitor_queue_read_up 1 when the last read of the queues from Redis succeeded.\n# TYPE monitor_queue_read_up gauge\nmonitor_queue_read_up 0\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []QueueOptions{{}, {Queues: []string{"q"}, MaxGroups: -1}, {Queues: []string{"q"}, Jobs: []Job{{Type: "x"}}}} {
		if _, err := NewQueueCollector(nil, o); err == nil {
			t.Errorf("NewQueueCollector(%+v) accepted", o)
		}
	}
}

// sizeOf gathers reg and returns monitor_queue_size{queue, state}.
// TestCollectorDiscoversQueues: a queue asynq lists that Discover accepts is exported
// beside the configured ones, and one it refuses is not.
func TestCollectorDiscoversQueues(t *testing.T) {
	r := testenv.NewRedis(t)
	ctx := context.Background()
	client := asynq.NewClientFromRedisClient(r.Client)
	for _, q := range []string{"ingest-0", "ingest-7", "ingest-7", "other"} {
		if _, err := client.EnqueueContext(ctx, asynq.NewTask("status:report", []byte(q)), asynq.Queue(q), asynq.Group("g")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewQueueCollector(r.Client, QueueOptions{Queues: []string{"ingest-0"}, MaxAge: time.Hour,
		Discover: func(q string) bool { return strings.HasPrefix(q, "ingest-") }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if got := sizeOf(t, reg, "ingest-7", "aggregating"); got != 2 {
		t.Errorf("discovered ingest-7 aggregating %v, want 2", got)
	}
	if got := sizeOf(t, reg, "ingest-0", "aggregating"); got != 1 {
		t.Errorf("ingest-0 aggregating %v, want 1", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "queue" && l.GetValue() == "other" {
					t.Fatalf("%s exports the refused queue other", mf.GetName())
				}
			}
		}
	}
}

func sizeOf(t *testing.T, reg prometheus.Gatherer, queue, state string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "monitor_queue_size" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if got["queue"] == queue && got["state"] == state {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no monitor_queue_size{queue=%q,state=%q}", queue, state)
	return 0
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
