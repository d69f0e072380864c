package alert_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"monitor/alert"
	"monitor/api"
	"monitor/command"
	"monitor/fleet"
	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const offlineAfter = 30 * time.Minute

type env struct {
	rdb      *testenv.Redis
	db       *gorm.DB
	fl       *fleet.Fleet
	enqueuer *asynq.Client
	sw       *alert.Sweeper
	cmds     *command.Store
	dec      *alert.Decommissioner
	now      time.Time
}

func newEnv(t *testing.T, opt alert.Options) *env {
	t.Helper()
	e := &env{rdb: testenv.NewRedis(t), db: testenv.NewDB(t).DB}
	e.fl = fleet.New(e.rdb.Client, 1)
	e.enqueuer = asynq.NewClient(e.rdb.Opt())
	t.Cleanup(func() {
		if err := e.enqueuer.Close(); err != nil {
			t.Error(err)
		}
	})
	if opt.OfflineAfter == 0 {
		opt.OfflineAfter = offlineAfter
	}
	e.now = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	opt.Logger = testenv.Logger(t)
	opt.Now = func() time.Time { return e.now }
	var err error
	if e.cmds, err = command.New(e.db, e.fl, command.Options{Logger: opt.Logger, Now: opt.Now}); err != nil {
		t.Fatal(err)
	}
	if e.dec, err = alert.NewDecommissioner(e.db, e.fl, alert.DecommissionOptions{Commands: e.cmds, Logger: opt.Logger, Now: opt.Now}); err != nil {
		t.Fatal(err)
	}
	opt.Decommissioner = e.dec
	sw, err := alert.NewSweeper(e.db, e.fl, e.enqueuer, opt)
	if err != nil {
		t.Fatal(err)
	}
	e.sw = sw
	return e
}

func (e *env) addDevices(t *testing.T, lastSeen time.Time, tenant uint32, city string, sns ...string) {
	t.Helper()
	for _, sn := range sns {
		d := model.Device{SN: sn, Tenant: tenant, City: city, FirstSeen: lastSeen, LastSeen: lastSeen}
		if err := e.db.Create(&d).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// report records that the API accepted a report of each sn at the current time.
func (e *env) report(t *testing.T, sns ...string) {
	t.Helper()
	for _, sn := range sns {
		if _, err := e.fl.Accept(context.Background(), sn, 0, e.now); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) sweep(t *testing.T) alert.Result {
	t.Helper()
	r, err := e.sw.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func alertsOf(t *testing.T, db *gorm.DB, state string) map[string]model.Alert {
	t.Helper()
	var as []model.Alert
	if err := db.Where("state = ?", state).Find(&as).Error; err != nil {
		t.Fatal(err)
	}
	m := map[string]model.Alert{}
	for _, a := range as {
		k := a.Kind + "/" + a.SN
		if _, dup := m[k]; dup {
			t.Fatalf("two %s alerts for %s", state, k)
		}
		m[k] = a
	}
	return m
}

func keys[M ~map[string]V, V any](m M) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// notifications returns the pending notification tasks' bodies.
func notifications(t *testing.T, opt asynq.RedisConnOpt) []alert.Notification {
	t.Helper()
	insp := asynq.NewInspector(opt)
	defer func() {
		if err := insp.Close(); err != nil {
			t.Error(err)
		}
	}()
	infos, err := insp.ListPendingTasks(task.QueueNotify, asynq.PageSize(1000))
	if err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatal(err)
	}
	var out []alert.Notification
	for _, ti := range infos {
		var n alert.Notification
		if err := json.Unmarshal(ti.Payload, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// start seeds the watch: the first sweep seeds last-seen from the database, and the
// fleet then reports for a full offline_after so that alerts may fire.
func (e *env) start(t *testing.T, sns ...string) {
	t.Helper()
	if r := e.sweep(t); r.Fired != 0 {
		t.Fatalf("first sweep fired %d", r.Fired)
	}
	for range 4 {
		e.report(t, sns...)
		e.now = e.now.Add(10 * time.Minute)
	}
}

func TestSweepMarksSilentDevicesOffline(t *testing.T) {
	e := newEnv(t, alert.Options{Notify: true})
	e.addDevices(t, e.now, 7, "0371", "A", "B", "C")
	e.start(t, "A", "B", "C")
	// C falls silent; A and B keep reporting every ten minutes.
	for range 4 {
		e.report(t, "A", "B")
		e.now = e.now.Add(10 * time.Minute)
	}
	r := e.sweep(t)
	if r.Held != "" {
		t.Fatalf("sweep held back: %s", r.Held)
	}
	if got := keys(alertsOf(t, e.db, model.AlertFiring)); !slices.Equal(got, []string{"device_offline/C"}) {
		t.Fatalf("firing = %v, want only C offline", got)
	}
	a := alertsOf(t, e.db, model.AlertFiring)["device_offline/C"]
	if a.Tenant != 7 || a.City != "0371" || a.EndsAt != nil {
		t.Fatalf("alert = %+v", a)
	}
	ns := notifications(t, e.rdb.Opt())
	if len(ns) != 1 || ns[0].Status != "firing" || len(ns[0].Alerts) != 1 || ns[0].Alerts[0].SN != "C" ||
		ns[0].Alerts[0].Kind != model.AlertOffline || ns[0].Alerts[0].StartsAt.IsZero() {
		t.Fatalf("notifications = %+v", ns)
	}
}

func TestOneAlertPerDeviceAndResolvedOnReturn(t *testing.T) {
	e := newEnv(t, alert.Options{Notify: true})
	e.addDevices(t, e.now, 1, "0010", "A", "B")
	e.start(t, "A", "B")
	for range 4 {
		e.report(t, "A")
		e.now = e.now.Add(10 * time.Minute)
	}
	for range 3 {
		e.sweep(t)
		e.report(t, "A")
		e.now = e.now.Add(time.Minute)
	}
	if got := keys(alertsOf(t, e.db, model.AlertFiring)); !slices.Equal(got, []string{"device_offline/B"}) {
		t.Fatalf("firing = %v, want one alert for B", got)
	}
	var n int64
	if err := e.db.Model(&model.Alert{}).Count(&n).Error; err != nil || n != 1 {
		t.Fatalf("alerts = %d (%v), want 1", n, err)
	}
	// The database itself refuses a second firing alert for the device and kind.
	key := model.AlertOffline + ":B"
	dup := model.Alert{Kind: model.AlertOffline, SN: "B", State: model.AlertFiring, StartsAt: e.now, FiringKey: &key}
	if err := e.db.Create(&dup).Error; err == nil {
		t.Fatal("a second firing alert for B was stored")
	}
	if len(notifications(t, e.rdb.Opt())) != 1 {
		t.Fatal("want one firing notification")
	}

	// B comes back: the alert resolves, a resolved notice is pushed, and a later
	// silence raises a new alert.
	e.report(t, "A", "B")
	e.now = e.now.Add(time.Minute)
	r := e.sweep(t)
	if r.Resolved != 1 {
		t.Fatalf("resolved = %d", r.Resolved)
	}
	res := alertsOf(t, e.db, model.AlertResolved)["device_offline/B"]
	if res.EndsAt == nil || !res.EndsAt.Equal(e.now) || len(alertsOf(t, e.db, model.AlertFiring)) != 0 {
		t.Fatalf("resolved alert = %+v", res)
	}
	ns := notifications(t, e.rdb.Opt())
	var resolved []alert.Notification
	for _, n := range ns {
		if n.Status == "resolved" {
			resolved = append(resolved, n)
		}
	}
	if len(resolved) != 1 || resolved[0].Alerts[0].SN != "B" || resolved[0].Alerts[0].EndsAt == nil {
		t.Fatalf("resolved notifications = %+v", resolved)
	}
	for range 4 {
		e.report(t, "A")
		e.now = e.now.Add(10 * time.Minute)
	}
	e.sweep(t)
	if _, ok := alertsOf(t, e.db, model.AlertFiring)["device_offline/B"]; !ok {
		t.Fatal("B silent again but no new alert")
	}
}

func TestNeverSeenDeviceIsNotOffline(t *testing.T) {
	e := newEnv(t, alert.Options{})
	e.addDevices(t, e.now, 1, "0010", "A")
	e.start(t, "A")
	for range 6 {
		e.report(t, "A")
		e.now = e.now.Add(10 * time.Minute)
	}
	// NEW is known to nobody: no report was ever accepted from it.
	e.sweep(t)
	if got := alertsOf(t, e.db, model.AlertFiring); len(got) != 0 {
		t.Fatalf("firing = %v", keys(got))
	}
}

func TestNoFalseOfflineWhileWorkersPaused(t *testing.T) {
	e := newEnv(t, alert.Options{})
	now := time.Now().UTC().Truncate(time.Microsecond)
	// The database last saw every device two hours ago: the workers stopped writing then.
	stale := now.Add(-2 * time.Hour)
	e.addDevices(t, stale, 3, "0371", "D1", "D2", "D3", "D4", "D5", "SILENT")
	e.now = stale
	e.sweep(t) // seeds from the database
	// Intake kept working all along (another device reported every ten minutes).
	for at := stale; at.Before(now); at = at.Add(10 * time.Minute) {
		e.now = at
		e.report(t, "HB")
	}
	insp := asynq.NewInspector(e.rdb.Opt())
	defer func() {
		if err := insp.Close(); err != nil {
			t.Error(err)
		}
	}()
	enqueuer := asynq.NewClient(e.rdb.Opt())
	defer func() {
		if err := enqueuer.Close(); err != nil {
			t.Error(err)
		}
	}()
	cmds, err := command.New(e.db, e.fl, command.Options{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Options{Logger: testenv.Logger(t), Enqueuer: enqueuer, Fleet: e.fl, Commands: cmds, Decommissioner: e.dec, DB: e.db,
		Redis: e.rdb.Client, Monitoring: http.NotFoundHandler(), OperatorToken: "sweep-test-operator-token", LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// The devices report through the API while the ingest queue is paused.
	for i, sn := range []string{"D1", "D2", "D3", "D4", "D5"} {
		if i == 1 {
			if err := insp.PauseQueue(task.QueueIngest); err != nil {
				t.Fatal(err)
			}
		}
		body := `{"sn":"` + sn + `","city":"0371","tenant":3,"ndate":"2026-03-01","ntime":"08:00:00"}`
		req := httptest.NewRequest(http.MethodPost, "/open/statusUpload", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("report %s: %d %s", sn, rec.Code, rec.Body)
		}
	}
	e.now = now.Add(time.Minute)
	r := e.sweep(t)
	if r.Held != "" {
		t.Fatalf("held: %s", r.Held)
	}
	if got := keys(alertsOf(t, e.db, model.AlertFiring)); !slices.Equal(got, []string{"device_offline/SILENT"}) {
		t.Fatalf("firing = %v, want only the device that stopped reporting", got)
	}
	var stored int64
	if err := e.db.Model(&model.Status{}).Count(&stored).Error; err != nil || stored != 0 {
		t.Fatalf("tb_status rows = %d (%v): the workers were meant to be paused", stored, err)
	}
}

func TestRedisLossAndIntakeGapDoNotFlipTheFleet(t *testing.T) {
	e := newEnv(t, alert.Options{})
	e.addDevices(t, e.now, 1, "0010", "A", "B", "C")
	e.start(t, "A", "B", "C")
	for range 4 {
		e.report(t, "A", "B")
		e.now = e.now.Add(10 * time.Minute)
	}
	e.sweep(t)
	if got := keys(alertsOf(t, e.db, model.AlertFiring)); !slices.Equal(got, []string{"device_offline/C"}) {
		t.Fatalf("firing = %v", got)
	}
	// Redis loses everything. The database's last_seen is old (the worker lags), so a
	// naive sweep would now call A and B offline.
	if err := e.rdb.Client.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(time.Minute)
	e.report(t, "A")
	r := e.sweep(t)
	if r.Fired != 0 || r.Held == "" {
		t.Fatalf("after redis loss: %+v", r)
	}
	if got := keys(alertsOf(t, e.db, model.AlertFiring)); !slices.Equal(got, []string{"device_offline/C"}) {
		t.Fatalf("firing after redis loss = %v, want C still firing only", got)
	}

	// Intake stops for two hours (our outage), then one device reports.
	e.now = e.now.Add(2 * time.Hour)
	if r := e.sweep(t); r.Fired != 0 || !strings.Contains(r.Held, "intake is down") {
		t.Fatalf("during intake outage: %+v", r)
	}
	e.report(t, "A")
	e.now = e.now.Add(time.Minute)
	if r := e.sweep(t); r.Fired != 0 || r.Held == "" {
		t.Fatalf("right after intake resumed: %+v", r)
	}
	// A clock jump forward on the sweep's host looks like an intake outage too.
	e.now = e.now.Add(24 * time.Hour)
	if r := e.sweep(t); r.Fired != 0 {
		t.Fatalf("after a clock jump: %+v", r)
	}
}

func TestUnsentRecords(t *testing.T) {
	e := newEnv(t, alert.Options{UnsentThreshold: 100})
	e.addDevices(t, e.now, 1, "0010", "LOW", "HIGH")
	if err := e.db.Model(&model.Device{}).Where("sn = ?", "HIGH").Updates(map[string]any{"unum1": 60, "unum2": 41}).Error; err != nil {
		t.Fatal(err)
	}
	if err := e.db.Model(&model.Device{}).Where("sn = ?", "LOW").Updates(map[string]any{"unum1": 50, "unum2": 50}).Error; err != nil {
		t.Fatal(err)
	}
	e.sweep(t)
	e.sweep(t)
	firing := alertsOf(t, e.db, model.AlertFiring)
	if got := keys(firing); !slices.Equal(got, []string{"unsent_records/HIGH"}) || firing["unsent_records/HIGH"].Value != 101 {
		t.Fatalf("firing = %v %+v", got, firing)
	}
	if err := e.db.Model(&model.Device{}).Where("sn = ?", "HIGH").Update("unum1", 0).Error; err != nil {
		t.Fatal(err)
	}
	e.sweep(t)
	if len(alertsOf(t, e.db, model.AlertFiring)) != 0 || len(alertsOf(t, e.db, model.AlertResolved)) != 1 {
		t.Fatal("unsent alert not resolved")
	}
}

func TestNoWebhookStoresAlertsOnly(t *testing.T) {
	e := newEnv(t, alert.Options{Notify: false})
	e.addDevices(t, e.now, 1, "0010", "A", "B")
	e.start(t, "A", "B")
	for range 4 {
		e.report(t, "A")
		e.now = e.now.Add(10 * time.Minute)
	}
	e.sweep(t)
	if len(alertsOf(t, e.db, model.AlertFiring)) != 1 {
		t.Fatal("alert not stored")
	}
	if ns := notifications(t, e.rdb.Opt()); len(ns) != 0 {
		t.Fatalf("pushed %d notifications without a URL", len(ns))
	}
}

// receiver is a webhook that records the bodies it gets and answers status.
type receiver struct {
	mu     sync.Mutex
	bodies []alert.Notification
	status int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var n alert.Notification
	err := json.NewDecoder(req.Body).Decode(&n)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.bodies = append(r.bodies, n)
	}
	w.WriteHeader(r.status)
}

func (r *receiver) got() []alert.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

// startWorker runs a real asynq server that handles notifications, retrying fast.
func startWorker(t *testing.T, opt asynq.RedisConnOpt, url string) {
	t.Helper()
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:              2,
		Queues:                   map[string]int{task.QueueNotify: 1},
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return 10 * time.Millisecond },
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		LogLevel:                 asynq.ErrorLevel,
	})
	mux := asynq.NewServeMux()
	// As app builds it: the task deadline bounds each call.
	mux.Handle(task.TypeAlertNotify, newNotifier(t, alert.NotifierOptions{URL: url}))
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

// waitFor polls cond until it holds; it fails the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCityGoingDarkIsOneNotification(t *testing.T) {
	rcv := &receiver{status: http.StatusOK}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	e := newEnv(t, alert.Options{Notify: true})
	dark := []string{"Z1", "Z2", "Z3", "Z4", "Z5", "Z6"}
	e.addDevices(t, e.now, 4, "0371", dark...)
	e.addDevices(t, e.now, 4, "0372", "OTHER1", "OTHER2")
	all := append(slices.Clone(dark), "OTHER1", "OTHER2")
	e.start(t, all...)
	// The depot in 0371 goes dark; its devices stop within the same few minutes.
	for i := range 6 {
		e.report(t, "OTHER1", "OTHER2")
		if i == 0 {
			e.report(t, dark[:3]...)
		}
		e.now = e.now.Add(7 * time.Minute)
	}
	for range 3 {
		e.sweep(t)
		e.now = e.now.Add(time.Minute)
	}
	startWorker(t, e.rdb.Opt(), hook.URL)
	waitFor(t, "six alerts at the webhook", func() bool {
		n := 0
		for _, b := range rcv.got() {
			n += len(b.Alerts)
		}
		return n >= 6
	})
	bodies := rcv.got()
	if len(bodies) < 1 || len(bodies) > 2 {
		t.Fatalf("%d webhook requests for one city going dark, want 1 or 2", len(bodies))
	}
	var sns []string
	for _, b := range bodies {
		if b.Status != "firing" || b.GroupLabels.City != "0371" || b.GroupLabels.Tenant != 4 {
			t.Fatalf("body = %+v", b)
		}
		for _, a := range b.Alerts {
			sns = append(sns, a.SN)
		}
	}
	slices.Sort(sns)
	if !slices.Equal(sns, dark) {
		t.Fatalf("alerted %v, want %v", sns, dark)
	}
}

func TestWebhookFailureRetriesThenArchives(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		attempts int
	}{
		{"server error retried", http.StatusInternalServerError, task.NotifyMaxRetry + 1},
		{"too many requests retried", http.StatusTooManyRequests, task.NotifyMaxRetry + 1},
		{"client error not retried", http.StatusBadRequest, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := &receiver{status: tc.status}
			hook := httptest.NewServer(rcv)
			defer hook.Close()
			rdb := testenv.NewRedis(t)
			enqueuer := asynq.NewClient(rdb.Opt())
			defer func() {
				if err := enqueuer.Close(); err != nil {
					t.Error(err)
				}
			}()
			body := `{"status":"firing","alerts":[{"kind":"device_offline","sn":"A"}]}`
			if _, err := enqueuer.Enqueue(task.NewAlertNotifyTask([]byte(body))); err != nil {
				t.Fatal(err)
			}
			insp := asynq.NewInspector(rdb.Opt())
			defer func() {
				if err := insp.Close(); err != nil {
					t.Error(err)
				}
			}()
			startWorker(t, rdb.Opt(), hook.URL)
			waitFor(t, "the notification to be archived", func() bool {
				ts, err := insp.ListArchivedTasks(task.QueueNotify)
				return err == nil && len(ts) == 1
			})
			ts, err := insp.ListArchivedTasks(task.QueueNotify)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(rcv.got()); got != tc.attempts {
				t.Fatalf("webhook called %d times, want %d", got, tc.attempts)
			}
			if ts[0].Retried != tc.attempts-1 || ts[0].LastErr == "" {
				t.Fatalf("archived task: retried %d, last error %q", ts[0].Retried, ts[0].LastErr)
			}
		})
	}
}
