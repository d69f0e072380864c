package alert_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"monitor/alert"
	"monitor/model"
)

// A depot goes dark device by device over 35 s: with a group wait and interval its
// offline alerts go out in at most two notices, and every one of them goes out.
func TestStaggeredSilencesOfOneDepotAreOneOrTwoNotices(t *testing.T) {
	e := newEnv(t, alert.Options{OfflineAfter: time.Minute, Notify: true,
		GroupWait: 30 * time.Second, GroupInterval: 5 * time.Minute})
	var depot, others []string
	for i := range 8 {
		depot = append(depot, fmt.Sprintf("DEPOT%d", i))
	}
	for i := range 20 {
		others = append(others, fmt.Sprintf("OTHER%02d", i))
	}
	e.addDevices(t, e.now, 7, "0371", depot...)
	e.addDevices(t, e.now, 7, "0010", others...)
	f := &fleetSim{e: e, sns: append(append([]string{}, depot...), others...), cadence: 10 * time.Second,
		sweepEvery: 5 * time.Second}
	e.sweep(t) // seeds
	f.run(t, 3*time.Minute, func(string) bool { return true })
	if n := len(notifications(t, e.rdb.Opt())); n != 0 {
		t.Fatalf("%d notices before the depot went dark", n)
	}
	// DEPOT<i> stops 5·i s from now: the last one 35 s after the first.
	dark := f.t
	stop := map[string]time.Duration{}
	for i, sn := range depot {
		stop[sn] = dark + time.Duration(i)*5*time.Second
	}
	f.run(t, 8*time.Minute, func(sn string) bool {
		at, ok := stop[sn]
		return !ok || f.t < at
	})

	if got := len(alertsOf(t, e.db, model.AlertFiring)); got != len(depot) {
		t.Fatalf("%d alerts firing, want the depot's %d", got, len(depot))
	}
	notices, alerts := 0, map[string]bool{}
	for _, n := range notifications(t, e.rdb.Opt()) {
		if n.GroupLabels.City != "0371" || n.Status != model.AlertFiring {
			t.Fatalf("unexpected notice %+v", n)
		}
		notices++
		for _, a := range n.Alerts {
			alerts[a.SN] = true
		}
	}
	if notices > 2 || len(alerts) != len(depot) {
		t.Fatalf("%d notices carrying %d of the depot's %d alerts, want at most 2 carrying all", notices, len(alerts), len(depot))
	}
}

// TestUnreadablePendingNoticeIsDropped: a pending notice that does not parse can never be
// sent; the sweep logs and removes it instead of skipping it on every sweep forever.
func TestUnreadablePendingNoticeIsDropped(t *testing.T) {
	e := newEnv(t, alert.Options{OfflineAfter: time.Minute, Notify: true})
	ctx := context.Background()
	const key = "monitor:{alert}:pending" // the pending notices' hash
	if err := e.rdb.Client.HSet(ctx, key, "garbage-group", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	e.sweep(t)
	if ok, err := e.rdb.Client.HExists(ctx, key, "garbage-group").Result(); err != nil || ok {
		t.Fatalf("the unreadable pending notice is still there (%v, %v)", ok, err)
	}
}
