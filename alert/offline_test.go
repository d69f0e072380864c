package alert_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"monitor/alert"
	"monitor/fleet"
	"monitor/model"
)

// TestSweepStateLostIsRebuilt: when the sweep's state on Redis is gone (the last-seen
// times kept), the next sweep reads every firing alert, resolves the devices that came
// back and rebuilds the state, so a later return still resolves.
func TestSweepStateLostIsRebuilt(t *testing.T) {
	e := newEnv(t, alert.Options{Notify: true})
	e.addDevices(t, e.now, 1, "0010", "A", "B", "C")
	e.start(t, "A", "B", "C")
	for range 4 {
		e.report(t, "A")
		e.now = e.now.Add(10 * time.Minute)
	}
	e.sweep(t)
	if got := keys(alertsOf(t, e.db, model.AlertFiring)); !slices.Equal(got, []string{"device_offline/B", "device_offline/C"}) {
		t.Fatalf("firing = %v, want B and C", got)
	}
	sh := fleet.NewShard(0, 1)
	if err := e.rdb.Client.Del(context.Background(), sh.Offline, sh.Returned, fleet.KeySweepCutoff, sh.Held).Err(); err != nil {
		t.Fatal(err)
	}
	// B reports while the state is gone: its report marks nothing.
	e.report(t, "A", "B")
	e.now = e.now.Add(time.Minute)
	if r := e.sweep(t); r.Resolved != 1 {
		t.Fatalf("sweep after the loss resolved %d, want B's", r.Resolved)
	}
	if got := keys(alertsOf(t, e.db, model.AlertFiring)); !slices.Equal(got, []string{"device_offline/C"}) {
		t.Fatalf("firing = %v, want C", got)
	}
	// C comes back: the rebuilt state marks it and the next sweep resolves it.
	e.report(t, "A", "C")
	e.now = e.now.Add(time.Minute)
	if r := e.sweep(t); r.Resolved != 1 {
		t.Fatalf("resolved %d, want C's", r.Resolved)
	}
	if got := alertsOf(t, e.db, model.AlertFiring); len(got) != 0 {
		t.Fatalf("firing = %v, want none", keys(got))
	}
}
