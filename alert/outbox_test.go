package alert_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"monitor/alert"
	"monitor/internal/testenv"
	"monitor/model"
)

// goneOffline brings device sn of a fresh env to the point where the next sweep fires
// its offline alert.
func goneOffline(t *testing.T, e *env, sn string) {
	t.Helper()
	e.addDevices(t, e.now, 2, "0371", sn, "PEER")
	e.start(t, sn, "PEER")
	for range 4 {
		e.report(t, "PEER")
		e.now = e.now.Add(10 * time.Minute)
	}
}

// firingNotices returns how many pending notification tasks carry a firing entry for sn.
func firingNotices(t *testing.T, e *env, sn string) int {
	t.Helper()
	n := 0
	for _, body := range notifications(t, e.rdb.Opt()) {
		for _, a := range body.Alerts {
			if a.SN == sn && a.Status == model.AlertFiring {
				n++
			}
		}
	}
	return n
}

// TestNoticeSurvivesAFailedEnqueue is scenario 11 with the enqueue failing: the sweep
// stores the alert but cannot enqueue its notice (the notification queue's Redis is
// gone). The next sweep, with the queue back, sends it, once.
func TestNoticeSurvivesAFailedEnqueue(t *testing.T) {
	e := newEnv(t, alert.Options{Notify: true})
	goneOffline(t, e, "LOST1")

	dead := asynq.NewClient(asynq.RedisClientOpt{Addr: testenv.FreeAddr(t), DialTimeout: 200 * time.Millisecond})
	defer func() {
		if err := dead.Close(); err != nil {
			t.Error(err)
		}
	}()
	failing, err := alert.NewSweeper(e.db, e.fl, dead, alert.Options{Notify: true, OfflineAfter: offlineAfter,
		Logger: testenv.Logger(t), Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := failing.Sweep(context.Background()); err == nil || !strings.Contains(err.Error(), "enqueue notification") {
		t.Fatalf("sweep with the queue down: %v, want the enqueue's error", err)
	}
	if got := alertsOf(t, e.db, model.AlertFiring); len(got) != 1 || got["device_offline/LOST1"].SN != "LOST1" {
		t.Fatalf("firing alerts %v, want LOST1's stored although its notice failed", keys(got))
	}
	if n := firingNotices(t, e, "LOST1"); n != 0 {
		t.Fatalf("%d notices enqueued through a queue that was down", n)
	}
	e.now = e.now.Add(time.Minute)
	e.sweep(t)
	if n := firingNotices(t, e, "LOST1"); n != 1 {
		t.Fatalf("%d firing notices of LOST1 after the queue came back, want 1", n)
	}
	e.now = e.now.Add(time.Minute)
	e.sweep(t)
	if n := firingNotices(t, e, "LOST1"); n != 1 {
		t.Fatalf("%d firing notices of LOST1 after one more sweep, want still 1", n)
	}
}

// TestNoticeSurvivesAFailureAfterTheAlertIsStored is scenario 11 with the step after
// the alert's insert failing: recording the notice as pending on Redis fails (the hash
// holding them has the wrong type, as a Redis refusing writes would). The notice waits
// in the outbox and goes out at the next sweep; without the outbox it was lost, since
// the next sweep finds the alert already firing and notifies nothing.
func TestNoticeSurvivesAFailureAfterTheAlertIsStored(t *testing.T) {
	e := newEnv(t, alert.Options{Notify: true})
	goneOffline(t, e, "LOST2")
	ctx := context.Background()
	if err := e.rdb.Client.Set(ctx, "monitor:{alert}:pending", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sw.Sweep(ctx); err == nil {
		t.Fatal("sweep succeeded although its notices could not be recorded")
	}
	if got := alertsOf(t, e.db, model.AlertFiring); len(got) != 1 {
		t.Fatalf("firing alerts %v, want LOST2's", keys(got))
	}
	var waiting int64
	if err := e.db.Model(&model.AlertNotice{}).Count(&waiting).Error; err != nil {
		t.Fatal(err)
	}
	if waiting != 1 {
		t.Fatalf("%d notices in the outbox, want LOST2's firing notice", waiting)
	}
	if err := e.rdb.Client.Del(ctx, "monitor:{alert}:pending").Err(); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(time.Minute)
	e.sweep(t)
	if n := firingNotices(t, e, "LOST2"); n != 1 {
		t.Fatalf("%d firing notices of LOST2 once Redis took writes again, want 1", n)
	}
	if err := e.db.Model(&model.AlertNotice{}).Count(&waiting).Error; err != nil {
		t.Fatal(err)
	}
	if waiting != 0 {
		t.Fatalf("%d notices left in the outbox after they were enqueued", waiting)
	}
}
