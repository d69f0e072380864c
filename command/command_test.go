package command_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"monitor/command"
	"monitor/fleet"
	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"
)

type env struct {
	db  *gorm.DB
	rdb *testenv.Redis
	fl  *fleet.Fleet
	st  *command.Store
	now time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{db: testenv.NewDB(t).DB, rdb: testenv.NewRedis(t)}
	e.fl = fleet.New(e.rdb.Client, 1)
	e.now = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	st, err := command.New(e.db, e.fl, command.Options{TTL: 24 * time.Hour, Logger: testenv.Logger(t), Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	return e
}

func (e *env) device(t *testing.T, sn string, tenant uint32, city, typ string, line uint32) {
	t.Helper()
	d := model.Device{SN: sn, Tenant: tenant, City: city, TyID: typ, Line: line, FirstSeen: e.now, LastSeen: e.now}
	if err := e.db.Create(&d).Error; err != nil {
		t.Fatal(err)
	}
}

// report is what statusUpload does: it returns the command id of the reply.
func (e *env) report(t *testing.T, sn string) uint64 {
	t.Helper()
	id, err := e.fl.Accept(context.Background(), sn, 0, e.now)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) get(t *testing.T, id uint64) model.Command {
	t.Helper()
	var c model.Command
	if err := e.db.Take(&c, id).Error; err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) sync(t *testing.T) {
	t.Helper()
	if err := e.st.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCommandLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.device(t, "A", 1, "0371", "B503", 5)
	e.device(t, "B", 1, "0371", "B503", 5)

	cmd, created, err := e.st.Create(ctx, "A", model.CommandUploadLogs, command.OriginOperator)
	if err != nil || !created || cmd.State != model.CommandPending || cmd.ID == 0 {
		t.Fatalf("create: %+v %v %v", cmd, created, err)
	}
	again, created, err := e.st.Create(ctx, "A", model.CommandUploadLogs, command.OriginOperator)
	if err != nil || created || again.ID != cmd.ID {
		t.Fatalf("second create: %+v %v %v, want the open command %d", again, created, err, cmd.ID)
	}

	if got := e.report(t, "B"); got != 0 {
		t.Fatalf("B's reply carries command %d", got)
	}
	if got := e.report(t, "A"); got != cmd.ID {
		t.Fatalf("A's reply carries %d, want %d", got, cmd.ID)
	}
	// Delivery reaches the database with the next sync, not on the report path.
	if got := e.get(t, cmd.ID); got.State != model.CommandPending {
		t.Fatalf("state before sync = %s", got.State)
	}
	e.now = e.now.Add(time.Minute)
	e.sync(t)
	got := e.get(t, cmd.ID)
	if got.State != model.CommandDelivered || got.Deliveries != 1 || got.DeliveredAt == nil || !got.DeliveredAt.Equal(e.now.Add(-time.Minute)) {
		t.Fatalf("after delivery: %+v", got)
	}

	// Unanswered, it is delivered again on later reports.
	for range 2 {
		if id := e.report(t, "A"); id != cmd.ID {
			t.Fatalf("redelivery carries %d", id)
		}
	}
	e.sync(t)
	if got := e.get(t, cmd.ID); got.State != model.CommandDelivered || got.Deliveries != 3 {
		t.Fatalf("after redelivery: %+v", got)
	}

	// The wrong device cannot complete it; its own upload does.
	lg := model.Log{Path: "x.log", Size: 3, SHA256: "00"}
	if err := e.st.Complete(ctx, "B", cmd.ID, &lg); !errors.Is(err, command.ErrNotOpen) {
		t.Fatalf("complete by B: %v", err)
	}
	if err := e.st.Complete(ctx, "A", cmd.ID, &lg); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, cmd.ID); got.State != model.CommandDone || got.DoneAt == nil {
		t.Fatalf("after upload: %+v", got)
	}
	if id := e.report(t, "A"); id != 0 {
		t.Fatalf("done command still delivered: %d", id)
	}
	lg2 := model.Log{Path: "y.log"}
	if err := e.st.Complete(ctx, "A", cmd.ID, &lg2); !errors.Is(err, command.ErrNotOpen) {
		t.Fatalf("second upload: %v", err)
	}
	e.sync(t) // a late delivery count must not reopen it
	if got := e.get(t, cmd.ID); got.State != model.CommandDone {
		t.Fatalf("state after late sync = %s", got.State)
	}

	// Unanswered for its TTL, a command expires, on Redis too, and a new one may open.
	old, _, err := e.st.Create(ctx, "B", model.CommandUploadLogs, command.OriginOperator)
	if err != nil {
		t.Fatal(err)
	}
	e.report(t, "B")
	e.now = e.now.Add(25 * time.Hour)
	e.sync(t)
	if got := e.get(t, old.ID); got.State != model.CommandExpired || got.Deliveries != 1 {
		t.Fatalf("after ttl: %+v", got)
	}
	if id := e.report(t, "B"); id != 0 {
		t.Fatalf("expired command delivered: %d", id)
	}
	if err := e.st.Check(ctx, "B", old.ID); !errors.Is(err, command.ErrNotOpen) {
		t.Fatalf("check expired: %v", err)
	}
	fresh, created, err := e.st.Create(ctx, "B", model.CommandUploadLogs, command.OriginOperator)
	if err != nil || !created || fresh.ID == old.ID {
		t.Fatalf("create after expiry: %+v %v %v", fresh, created, err)
	}
}

func TestSyncRepairsRedis(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.device(t, "A", 1, "0371", "B503", 5)
	cmd, _, err := e.st.Create(ctx, "A", model.CommandUploadLogs, command.OriginOperator)
	if err != nil {
		t.Fatal(err)
	}
	// Redis loses its open commands, and holds a stale one.
	if err := e.rdb.Client.Del(ctx, fleet.NewShard(0, 1).Open).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Client.HSet(ctx, fleet.NewShard(0, 1).Open, "GHOST", "999").Err(); err != nil {
		t.Fatal(err)
	}
	if id := e.report(t, "A"); id != 0 {
		t.Fatalf("delivered without redis state: %d", id)
	}
	e.sync(t)
	if id := e.report(t, "A"); id != cmd.ID {
		t.Fatalf("after sync A gets %d, want %d", id, cmd.ID)
	}
	if id := e.report(t, "GHOST"); id != 0 {
		t.Fatalf("stale command still delivered: %d", id)
	}
}

func TestPullReachesOnlySelectedDevices(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		selector string
		want     []string
	}{
		{"city=0371,type=B503", []string{"A", "C"}},
		{"tenant=2", []string{"D"}},
		{"line=5,city=0371", []string{"A", "B"}},
		{"all", []string{"A", "B", "C", "D"}},
	} {
		t.Run(tc.selector, func(t *testing.T) {
			e := newEnv(t)
			e.device(t, "A", 1, "0371", "B503", 5)
			e.device(t, "B", 1, "0371", "X1", 5)
			e.device(t, "C", 1, "0371", "B503", 6)
			e.device(t, "D", 2, "0999", "B503", 5)
			sel, err := model.ParseSelector(tc.selector)
			if err != nil {
				t.Fatal(err)
			}
			n, err := e.st.Pull(ctx, sel)
			if err != nil || n != int64(len(tc.want)) {
				t.Fatalf("pull opened %d (%v), want %d", n, err, len(tc.want))
			}
			var got []string
			for _, sn := range []string{"A", "B", "C", "D"} {
				if e.report(t, sn) != 0 {
					got = append(got, sn)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("commands reached %v, want %v", got, tc.want)
			}
			// Pulling again opens nothing new: one open command per device and type.
			if n, err := e.st.Pull(ctx, sel); err != nil || n != 0 {
				t.Fatalf("second pull opened %d (%v)", n, err)
			}
		})
	}
}

func TestHandlePullTakesTheSelectorFromThePayload(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.device(t, "A", 1, "0371", "B503", 5)
	e.device(t, "B", 1, "0999", "B503", 5)
	if err := e.st.HandlePull(ctx, asynq.NewTask(task.TypeLogPull, []byte("city=0999"))); err != nil {
		t.Fatal(err)
	}
	if e.report(t, "A") != 0 || e.report(t, "B") == 0 {
		t.Fatal("the pull did not follow its selector")
	}
	err := e.st.HandlePull(ctx, asynq.NewTask(task.TypeLogPull, []byte("depot=1")))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("bad selector: %v, want SkipRetry", err)
	}
}

// TestDeliveryWithoutFirstTimeTakesTheStoreClock: a delivery whose first time was never
// recorded (given back by RestoreDeliveries with a zero First, so TakeDeliveries returns
// it without one) counts as delivered at the Store's clock, not at the host's.
func TestDeliveryWithoutFirstTimeTakesTheStoreClock(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.now = time.Date(2021, 8, 7, 18, 30, 0, 0, time.UTC) // years before the host's clock
	e.device(t, "A", 1, "0371", "B503", 5)
	cmd, _, err := e.st.Create(ctx, "A", model.CommandUploadLogs, command.OriginOperator)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.fl.RestoreDeliveries(ctx, map[uint64]fleet.Delivery{cmd.ID: {Count: 2}}); err != nil {
		t.Fatal(err)
	}
	ds, err := e.fl.TakeDeliveries(ctx)
	if err != nil || ds[cmd.ID].Count != 2 || !ds[cmd.ID].First.IsZero() {
		t.Fatalf("setup: deliveries %+v (%v), want a count of 2 with no first time", ds, err)
	}
	if err := e.fl.RestoreDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	e.sync(t)
	got := e.get(t, cmd.ID)
	if got.State != model.CommandDelivered || got.Deliveries != 2 || got.DeliveredAt == nil || !got.DeliveredAt.Equal(e.now) {
		t.Fatalf("after sync: state %s, deliveries %d, delivered_at %v; want delivered twice at the store's clock %v",
			got.State, got.Deliveries, got.DeliveredAt, e.now)
	}
}

// nextID is the id the next command will get: the table's AUTO_INCREMENT on MySQL, and
// max(id)+1 on SQLite, which reuses nothing either way.
func (e *env) nextID(t *testing.T) uint64 {
	t.Helper()
	var next uint64
	q := "SELECT COALESCE(MAX(id), 0) + 1 FROM commands"
	if e.db.Dialector.Name() == "mysql" {
		q = "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'commands'"
	}
	if err := e.db.Raw(q).Scan(&next).Error; err != nil {
		t.Fatal(err)
	}
	return next
}

// TestPullBurnsNoIDs is issue 9: a log pull tick over devices that all have a command open
// consumed an auto-increment value per device (ids went from 10 to 320,526 in 16 minutes),
// and terminals may keep cmdId in 32 bits. Ids may grow by at most the commands created.
func TestPullBurnsNoIDs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const devices, ticks = 300, 50
	ds := make([]model.Device, devices)
	for i := range ds {
		ds[i] = model.Device{SN: fmt.Sprintf("D%04d", i), Tenant: 1, City: "0371", FirstSeen: e.now, LastSeen: e.now}
	}
	if err := e.db.CreateInBatches(ds, 500).Error; err != nil {
		t.Fatal(err)
	}
	all, err := model.ParseSelector("all")
	if err != nil {
		t.Fatal(err)
	}
	start := e.nextID(t)
	n, err := e.st.Pull(ctx, all)
	if err != nil || n != devices {
		t.Fatalf("first pull opened %d (%v), want %d", n, err, devices)
	}
	afterFirst := e.nextID(t)
	if afterFirst-start > devices {
		t.Errorf("the first pull created %d commands and took %d ids", n, afterFirst-start)
	}
	for range ticks {
		if n, err := e.st.Pull(ctx, all); err != nil || n != 0 {
			t.Fatalf("pull opened %d (%v) with every device's command open", n, err)
		}
	}
	afterTicks := e.nextID(t)
	t.Logf("%d devices: first pull took %d ids for %d commands; %d more ticks took %d ids for 0 commands",
		devices, afterFirst-start, n, ticks, afterTicks-afterFirst)
	if afterTicks != afterFirst {
		t.Errorf("%d pulls that created nothing took %d ids", ticks, afterTicks-afterFirst)
	}
	// Ten devices' commands finish; the next tick opens exactly those ten.
	var done []uint64
	if err := e.db.Model(&model.Command{}).Where("sn < ?", "D0010").Pluck("id", &done).Error; err != nil {
		t.Fatal(err)
	}
	for _, id := range done {
		var c model.Command
		if err := e.db.Take(&c, id).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.st.Complete(ctx, c.SN, id, &model.Log{Path: "x.log"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := e.st.Pull(ctx, all); err != nil || n != 10 {
		t.Fatalf("pull opened %d (%v), want the 10 whose command is done", n, err)
	}
	if got := e.nextID(t) - afterTicks; got > 10 {
		t.Errorf("a pull that created 10 commands took %d ids", got)
	}
	// An operator's command for a device that has one open returns that one, taking no id.
	before := e.nextID(t)
	if _, created, err := e.st.Create(ctx, "D0100", model.CommandUploadLogs, command.OriginOperator); err != nil || created {
		t.Fatalf("create on a device with an open command: created %v (%v)", created, err)
	}
	if got := e.nextID(t) - before; got != 0 {
		t.Errorf("a create that created nothing took %d ids", got)
	}
}

// TestDeliveredAtOnlyFromAReply is issue 18f: deliveredAt is when a reply to a report
// first carried the command, never set for a command no reply carried. A log upload that
// completes a command before the sync has seen its delivery leaves it to the sync, which
// records the reply's time, not the upload's.
func TestDeliveredAtOnlyFromAReply(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, sn := range []string{"A", "B", "C"} {
		e.device(t, sn, 1, "0371", "B503", 5)
	}
	create := func(sn string) uint64 {
		t.Helper()
		cmd, _, err := e.st.Create(ctx, sn, model.CommandUploadLogs, command.OriginOperator)
		if err != nil {
			t.Fatal(err)
		}
		return cmd.ID
	}
	a, b, c := create("A"), create("B"), create("C")

	// A: no reply ever carried it; the upload completes it all the same.
	if err := e.st.Complete(ctx, "A", a, &model.Log{Path: "a.log"}); err != nil {
		t.Fatal(err)
	}
	// B: a reply carried it at t0; the upload an hour later comes before any sync.
	t0 := e.now
	if e.report(t, "B") != b {
		t.Fatal("the reply to B's report did not carry its command")
	}
	e.now = e.now.Add(time.Hour)
	if err := e.st.Complete(ctx, "B", b, &model.Log{Path: "b.log"}); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, b); got.DeliveredAt != nil {
		t.Errorf("B before the sync: delivered_at %v from the upload, want none until the sync records the reply", got.DeliveredAt)
	}
	// C: a first-delivery time without a count, which no reply leaves: nothing was delivered.
	if err := e.fl.RestoreDeliveries(ctx, map[uint64]fleet.Delivery{c: {Count: 0, First: t0}}); err != nil {
		t.Fatal(err)
	}
	e.sync(t)

	if got := e.get(t, a); got.State != model.CommandDone || got.DeliveredAt != nil || got.Deliveries != 0 {
		t.Errorf("A: %s, delivered_at %v, deliveries %d; want done and never delivered", got.State, got.DeliveredAt, got.Deliveries)
	}
	if got := e.get(t, b); got.State != model.CommandDone || got.DeliveredAt == nil || !got.DeliveredAt.Equal(t0) || got.Deliveries != 1 {
		t.Errorf("B: %s, delivered_at %v, deliveries %d; want done, delivered once at the reply's %v",
			got.State, got.DeliveredAt, got.Deliveries, t0)
	}
	if got := e.get(t, c); got.State != model.CommandPending || got.DeliveredAt != nil || got.Deliveries != 0 {
		t.Errorf("C: %s, delivered_at %v, deliveries %d; want pending and never delivered", got.State, got.DeliveredAt, got.Deliveries)
	}
}
