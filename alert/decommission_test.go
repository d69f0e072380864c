package alert_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"monitor/alert"
	"monitor/api"
	"monitor/internal/testenv"
	"monitor/model"
)

const decommissionToken = "decommission-test-operator-token"

// decommissionedTotal returns monitor_devices_decommissioned_total{by}.
func decommissionedTotal(t *testing.T, by string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(alert.DecommissionCollectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "monitor_devices_decommissioned_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "by" && l.GetValue() == by {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// offlineB fires B's offline alert in e: A keeps reporting, B stops. It returns the
// firing alert.
func offlineB(t *testing.T, e *env) model.Alert {
	t.Helper()
	e.addDevices(t, e.now, 7, "0371", "A", "B")
	e.start(t, "A", "B")
	for range 4 {
		e.report(t, "A")
		e.now = e.now.Add(10 * time.Minute)
	}
	e.sweep(t)
	a, ok := alertsOf(t, e.db, model.AlertFiring)["device_offline/B"]
	if !ok {
		t.Fatal("B is not offline")
	}
	return a
}

// checkGone checks that B left the live fleet state and devices, that its alert
// resolved at endedAt as decommissioned, its command expired and its history stayed.
func checkGone(t *testing.T, e *env, firing model.Alert, cmdID uint64, endedAt time.Time) {
	t.Helper()
	ctx := context.Background()
	seen, err := e.fl.LastSeen(ctx, []string{"B"})
	if err != nil || !seen[0].IsZero() {
		t.Errorf("B last seen %v (%v), want none", seen, err)
	}
	if _, bound, err := e.fl.Tenant(ctx, "B"); err != nil || bound {
		t.Errorf("B still bound to a tenant (%v)", err)
	}
	open, err := e.fl.Open(ctx)
	if _, ok := open["B"]; ok || err != nil {
		t.Errorf("B still has an open command on Redis: %v (%v)", open, err)
	}
	var a model.Alert
	if err := e.db.First(&a, firing.ID).Error; err != nil {
		t.Fatal(err)
	}
	if a.State != model.AlertResolved || !a.Decommissioned || a.EndsAt == nil || !a.EndsAt.Equal(endedAt) {
		t.Errorf("B's alert after decommission %+v, want resolved at %v and decommissioned", a, endedAt)
	}
	var cmd model.Command
	if err := e.db.First(&cmd, cmdID).Error; err != nil || cmd.State != model.CommandExpired || cmd.OpenKey != nil {
		t.Errorf("B's command %+v (%v), want expired", cmd, err)
	}
	for table, want := range map[string]int64{"devices": 0, "tb_status": 1} {
		var n int64
		if err := e.db.Table(table).Where("sn = ?", "B").Count(&n).Error; err != nil || n != want {
			t.Errorf("%s holds %d rows of B (%v), want %d", table, n, err, want)
		}
	}
}

// checkResolvedNotice checks that exactly one resolved device_offline notice went out:
// B's, marked decommissioned, with its firing notice's id.
func checkResolvedNotice(t *testing.T, e *env, firing model.Alert) {
	t.Helper()
	var resolved []alert.AlertEntry
	for _, n := range notifications(t, e.rdb.Opt()) {
		for _, a := range n.Alerts {
			if n.Status == model.AlertResolved && a.Kind == model.AlertOffline {
				resolved = append(resolved, a)
			}
		}
	}
	if len(resolved) != 1 || resolved[0].SN != "B" || !resolved[0].Decommissioned || resolved[0].ID != firing.Fingerprint() ||
		resolved[0].EndsAt == nil {
		t.Fatalf("resolved notices %+v, want B's one, decommissioned, with its firing id", resolved)
	}
}

// prepareB gives B an open command and a history row.
func prepareB(t *testing.T, e *env) uint64 {
	t.Helper()
	cmd, _, err := e.cmds.Create(context.Background(), "B", model.CommandUploadLogs, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.Create(&model.Status{SN: "B", NDate: e.now.Format(time.DateOnly), NTime: "08:00:00", AcceptedAt: e.now}).Error; err != nil {
		t.Fatal(err)
	}
	return cmd.ID
}

func deleteDevice(t *testing.T, srv *api.Server, sn string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodDelete, "/api/v1/devices/"+sn, nil)
	req.Header.Set("Authorization", "Bearer "+decommissionToken)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	return rec
}

// TestDecommissionThroughTheAPI: DELETE /api/v1/devices/{sn} takes an offline device
// out of the fleet, and the device reporting again comes back as a new device.
func TestDecommissionThroughTheAPI(t *testing.T) {
	e := newEnv(t, alert.Options{Notify: true})
	firing := offlineB(t, e)
	cmdID := prepareB(t, e)
	srv, err := api.New(api.Options{Logger: testenv.Logger(t), Enqueuer: e.enqueuer, Fleet: e.fl, Commands: e.cmds,
		Decommissioner: e.dec, DB: e.db, Redis: e.rdb.Client, Monitoring: http.NotFoundHandler(),
		OperatorToken: decommissionToken, LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	before := decommissionedTotal(t, model.DecommissionedByOperator)

	if rec := deleteDevice(t, srv, "B"); rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
		t.Fatalf("DELETE B: %d %s, want 204", rec.Code, rec.Body)
	}
	if got := decommissionedTotal(t, model.DecommissionedByOperator) - before; got != 1 {
		t.Errorf("decommissioned counter rose by %v, want 1", got)
	}
	checkGone(t, e, firing, cmdID, e.now)
	// The next sweep sends the resolved notice; nothing fires for B again, and the
	// notice goes out once.
	for range 6 {
		e.now = e.now.Add(10 * time.Minute)
		e.report(t, "A")
		e.sweep(t)
	}
	checkResolvedNotice(t, e, firing)
	if got := keys(alertsOf(t, e.db, model.AlertFiring)); len(got) != 0 {
		t.Errorf("firing after decommission: %v", got)
	}
	for _, sn := range []string{"B", "NEVER"} {
		if rec := deleteDevice(t, srv, sn); rec.Code != http.StatusNotFound {
			t.Errorf("DELETE %s: %d %s, want 404", sn, rec.Code, rec.Body)
		}
	}
	if rec := deleteDevice(t, srv, "bad.sn"); rec.Code != http.StatusBadRequest {
		t.Errorf("DELETE of a bad sn: %d, want 400", rec.Code)
	}

	// B reports again under another tenant: a new device, bound to that tenant, that
	// goes offline again after its own silence.
	ctx := context.Background()
	if _, err := e.fl.Accept(ctx, "B", 9, e.now); err != nil {
		t.Fatal(err)
	}
	if tenant, bound, err := e.fl.Tenant(ctx, "B"); err != nil || !bound || tenant != 9 {
		t.Errorf("B back bound to %d (%v, %v), want tenant 9", tenant, bound, err)
	}
	e.addDevices(t, e.now, 9, "0371", "B")
	for range 4 {
		e.report(t, "A")
		e.now = e.now.Add(10 * time.Minute)
	}
	e.sweep(t)
	again, ok := alertsOf(t, e.db, model.AlertFiring)["device_offline/B"]
	if !ok || again.Tenant != 9 || again.ID == firing.ID {
		t.Errorf("B silent after coming back: firing %+v, want a new alert in tenant 9", again)
	}
}

// TestForgetAfterDecommissionsSilentDevices: with MONITOR_FORGET_AFTER the sweep
// decommissions a device once it has been silent that long, the same way, and counts it.
func TestForgetAfterDecommissionsSilentDevices(t *testing.T) {
	e := newEnv(t, alert.Options{Notify: true, ForgetAfter: 3 * time.Hour})
	firing := offlineB(t, e) // B last reported 40 minutes ago
	cmdID := prepareB(t, e)
	before := decommissionedTotal(t, model.DecommissionedByForgetAfter)

	forgotten := 0
	var forgotAt time.Time
	for e.now.Before(firing.StartsAt.Add(3 * time.Hour)) {
		e.report(t, "A")
		e.now = e.now.Add(5 * time.Minute)
		r := e.sweep(t)
		if r.Forgotten > 0 && forgotAt.IsZero() {
			forgotAt = e.now
		}
		forgotten += r.Forgotten
	}
	lastSeen := firing.StartsAt.Add(-offlineAfter)
	if forgotten != 1 || forgotAt.Sub(lastSeen) < 3*time.Hour || forgotAt.Sub(lastSeen) >= 3*time.Hour+5*time.Minute {
		t.Fatalf("forgot %d devices, at %v after B's last report; want B, at the first sweep 3h after", forgotten, forgotAt.Sub(lastSeen))
	}
	if got := decommissionedTotal(t, model.DecommissionedByForgetAfter) - before; got != 1 {
		t.Errorf("decommissioned counter rose by %v, want 1", got)
	}
	checkGone(t, e, firing, cmdID, forgotAt)
	checkResolvedNotice(t, e, firing)
	// A kept reporting and stays.
	seen, err := e.fl.LastSeen(context.Background(), []string{"A"})
	if err != nil || seen[0].IsZero() {
		t.Errorf("A forgotten too: %v (%v)", seen, err)
	}
}

// TestForgetAfterIsSpreadOverSweeps: a sweep decommissions at most 500 devices, the
// longest silent first, and the next sweep goes on with the rest.
func TestForgetAfterIsSpreadOverSweeps(t *testing.T) {
	e := newEnv(t, alert.Options{ForgetAfter: 2 * time.Hour})
	gone := make([]string, 600)
	for i := range gone {
		gone[i] = fmt.Sprintf("GONE%03d", i)
	}
	e.addDevices(t, e.now, 1, "0371", append([]string{"A"}, gone...)...)
	e.start(t, append([]string{"A"}, gone...)...)
	for range 13 { // A alone for 2h10m
		e.report(t, "A")
		e.now = e.now.Add(10 * time.Minute)
	}
	first := e.sweep(t)
	second := e.sweep(t)
	if first.Forgotten != 500 || second.Forgotten != 100 {
		t.Fatalf("forgot %d then %d, want 500 then 100", first.Forgotten, second.Forgotten)
	}
	var left int64
	if err := e.db.Model(&model.Device{}).Count(&left).Error; err != nil || left != 1 {
		t.Fatalf("%d devices left (%v), want A", left, err)
	}
}
