package fleet_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"monitor/fleet"
	"monitor/internal/testenv"
)

// lastSeen returns sn's last-seen time on Redis, zero when it has none.
func lastSeen(t *testing.T, fl *fleet.Fleet, sn string) time.Time {
	t.Helper()
	seen, err := fl.LastSeen(t.Context(), []string{sn})
	if err != nil {
		t.Fatal(err)
	}
	return seen[0]
}

func newRecorder(t *testing.T, fl *fleet.Fleet, o fleet.RecorderOptions) *fleet.Recorder {
	t.Helper()
	rec, err := fleet.NewRecorder(fl, o)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestRecorderBuffersAndDelivers: a report of a device without an open command is
// answered without a round trip and recorded by the next flush exactly like
// Fleet.Accept records it; a device with an open command still gets it in the reply,
// and the delivery is counted.
func TestRecorderBuffersAndDelivers(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.NewRedis(t)
	fl := fleet.New(rdb.Client, 2)
	rec := newRecorder(t, fl, fleet.RecorderOptions{FlushEvery: time.Hour})
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	accept := func(sn string, tenant uint32, at time.Time, want uint64) {
		t.Helper()
		if id, err := rec.Accept(ctx, sn, tenant, at); err != nil || id != want {
			t.Fatalf("accept %s at %v: %d, %v; want %d", sn, at, id, err, want)
		}
	}
	must(fl.SetOpen(ctx, map[string]uint64{"A": 7}))

	// Before the first flush there is no index: every report goes the direct way.
	accept("B", 1, t0, 0)
	if got := lastSeen(t, fl, "B"); !got.Equal(t0) {
		t.Fatalf("B before the first flush: last seen %v, want %v at once", got, t0)
	}
	must(rec.Flush(ctx))

	accept("A", 1, t0, 7)
	accept("A", 1, t0.Add(time.Second), 7)
	// C: buffered, the newest time and the first tenant win; it returns from offline.
	c := fl.ShardOf("C")
	must(rdb.Client.SAdd(ctx, c.Offline, "C").Err())
	accept("C", 5, t0.Add(2*time.Minute), 0)
	accept("C", 6, t0.Add(time.Minute), 0)
	if got := lastSeen(t, fl, "C"); !got.IsZero() {
		t.Fatalf("C before the flush: last seen %v, want none yet", got)
	}
	// The recorder reads its own buffer back: a device that just reported is known.
	if got, err := rec.LastSeen(ctx, []string{"C", "B", "NEVER"}); err != nil || !got[0].Equal(t0.Add(2*time.Minute)) || !got[1].Equal(t0) || !got[2].IsZero() {
		t.Fatalf("recorder's last seen of C, B, NEVER before the flush: %v, %v", got, err)
	}
	must(rec.Flush(ctx))
	if got := lastSeen(t, fl, "C"); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("C after the flush: last seen %v", got)
	}
	if tn, ok, err := fl.Tenant(ctx, "C"); err != nil || !ok || tn != 5 {
		t.Fatalf("C's tenant %d %v %v, want 5 (its first report's)", tn, ok, err)
	}
	if off, ret := rdb.Client.SIsMember(ctx, c.Offline, "C").Val(), rdb.Client.SIsMember(ctx, c.Returned, "C").Val(); off || !ret {
		t.Fatalf("C returned: in offline %v, in returned %v", off, ret)
	}
	// A later flush never moves a last-seen time back.
	accept("C", 5, t0, 0)
	must(rec.Flush(ctx))
	if got := lastSeen(t, fl, "C"); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("C after an older report: last seen %v", got)
	}
	// Every report counts in its intake bucket, buffered or not: B, A twice, C three times.
	intake, err := fl.Intake(ctx, t0.Add(-time.Minute))
	must(err)
	total := int64(0)
	for _, n := range intake {
		total += n
	}
	if total != 6 {
		t.Fatalf("intake %v, want 6 reports", intake)
	}

	// A command opened after the last flush reaches the device from the next flush on.
	must(fl.SetOpen(ctx, map[string]uint64{"D": 9}))
	must(rec.Flush(ctx))
	accept("D", 1, t0, 9)
	must(fl.ClearOpen(ctx, map[string]uint64{"D": 9}))
	must(rec.Flush(ctx))
	accept("D", 1, t0.Add(time.Second), 0)
	if got := lastSeen(t, fl, "D"); !got.Equal(t0) {
		t.Fatalf("D after its command closed: last seen %v, want the direct report's %v until the flush", got, t0)
	}
	// A forgotten device's command leaves the index too.
	must(fl.SetOpen(ctx, map[string]uint64{"E": 11}))
	must(rec.Flush(ctx))
	if _, err := fl.Forget(ctx, "E"); err != nil {
		t.Fatal(err)
	}
	must(rec.Flush(ctx))
	accept("E", 1, t0, 0)

	ds, err := fl.TakeDeliveries(ctx)
	if err != nil || len(ds) != 2 || ds[7].Count != 2 || ds[9].Count != 1 || !ds[7].First.Equal(t0) {
		t.Fatalf("deliveries %+v %v, want 7 twice and 9 once", ds, err)
	}

	// Close flushes what is buffered; reports after it go the direct way.
	must(rec.Close(ctx))
	if got := lastSeen(t, fl, "D"); !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("D after close: last seen %v", got)
	}
	accept("F", 1, t0, 0)
	if got := lastSeen(t, fl, "F"); !got.Equal(t0) {
		t.Fatalf("F after close: last seen %v, want it at once", got)
	}
}

// TestRecorderGoesDirectWhenStaleOrFull: a shard whose index was not refreshed for
// Stale, and a report beyond MaxPending, take the direct way; a failed flush keeps its
// reports for the next.
func TestRecorderGoesDirectWhenStaleOrFull(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.NewRedis(t)
	fl := fleet.New(rdb.Client, 1)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

	rec := newRecorder(t, fl, fleet.RecorderOptions{FlushEvery: 10 * time.Millisecond, Stale: 50 * time.Millisecond, MaxPending: 1})
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Accept(ctx, "A", 1, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Accept(ctx, "B", 1, t0); err != nil { // the buffer is full
		t.Fatal(err)
	}
	if a, b := lastSeen(t, fl, "A"), lastSeen(t, fl, "B"); !a.IsZero() || !b.Equal(t0) {
		t.Fatalf("last seen A %v (want buffered), B %v (want direct)", a, b)
	}
	// A flush that fails keeps A.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := rec.Flush(cancelled); err == nil {
		t.Fatal("a flush with a cancelled context succeeded")
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if a := lastSeen(t, fl, "A"); !a.Equal(t0) {
		t.Fatalf("A after a failed and a good flush: last seen %v", a)
	}
	time.Sleep(60 * time.Millisecond)
	if _, err := rec.Accept(ctx, "C", 1, t0); err != nil {
		t.Fatal(err)
	}
	if c := lastSeen(t, fl, "C"); !c.Equal(t0) {
		t.Fatalf("C on a stale index: last seen %v, want it at once", c)
	}
}

// TestRecorderStartClose: the flush loop writes buffered reports on its own, and
// Close stops it and leaves no goroutine behind.
func TestRecorderStartClose(t *testing.T) {
	// Checked after every cleanup, the test Redis's too (a stand-in serves from a goroutine).
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	ctx := context.Background()
	rdb := testenv.NewRedis(t)
	fl := fleet.New(rdb.Client, 1)
	rec := newRecorder(t, fl, fleet.RecorderOptions{FlushEvery: 20 * time.Millisecond})
	rec.Start()
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	testenv.WaitFor(t, 5*time.Second, "a buffered report recorded by the loop", func() bool {
		if _, err := rec.Accept(ctx, "A", 1, t0); err != nil {
			t.Fatal(err)
		}
		return lastSeen(t, fl, "A").Equal(t0)
	})
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rec.Close(stopCtx); err != nil {
		t.Fatal(err)
	}
}

// recorderOnCluster runs a Recorder over n shards on a cluster client: every shard's
// flush script touches one slot, and the indexes follow the open commands of each.
func recorderOnCluster(t *testing.T, fl *fleet.Fleet, sns []string, open map[string]uint64) {
	t.Helper()
	ctx := t.Context()
	rec := newRecorder(t, fl, fleet.RecorderOptions{FlushEvery: time.Hour})
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t1 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for _, sn := range sns {
		if id, err := rec.Accept(ctx, sn, 4, t1); err != nil || id != open[sn] {
			t.Fatalf("recorder accept %s: %d, %v; want %d", sn, id, err, open[sn])
		}
	}
	if err := fl.ClearOpen(ctx, open); err != nil {
		t.Fatal(err)
	}
	if err := fl.SetOffline(ctx, sns[:3], t1); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t2 := t1.Add(time.Hour)
	for _, sn := range sns {
		if id, err := rec.Accept(ctx, sn, 4, t2); err != nil || id != 0 {
			t.Fatalf("recorder accept %s after its command closed: %d, %v", sn, id, err)
		}
	}
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	seen, err := fl.LastSeen(ctx, sns)
	if err != nil {
		t.Fatal(err)
	}
	for i, at := range seen {
		if !at.Equal(t2) {
			t.Fatalf("%s: last seen %v after the recorder's flush, want %v", sns[i], at, t2)
		}
	}
	returned, err := fl.Returned(ctx)
	if err != nil || !sameSet(returned, sns[:3]) {
		t.Fatalf("returned after the recorder's flush: %v, %v; want %v", returned, err, sns[:3])
	}
}
