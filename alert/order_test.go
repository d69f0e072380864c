package alert_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"monitor/alert"
	"monitor/model"
	"monitor/task"
)

// flaky is a webhook that refuses the first delivery of every resolved notice with a
// 500 and records, in arrival order, each body it accepts.
type flaky struct {
	mu       sync.Mutex
	refused  bool
	accepted []alert.Notification
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var n alert.Notification
	if err := json.Unmarshal(body, &n); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n.Status == model.AlertResolved && !f.refused {
		f.refused = true
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	f.accepted = append(f.accepted, n)
}

func (f *flaky) got() []alert.Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]alert.Notification(nil), f.accepted...)
}

// newer reports whether entry a supersedes b for their device and kind, by the fields
// the notices carry: a later episode has a higher seq, and resolved ends an episode.
func newer(a, b alert.AlertEntry) bool {
	return a.Seq > b.Seq || a.Seq == b.Seq && a.Status == model.AlertResolved && b.Status != model.AlertResolved
}

// TestNoticesCarryWhatOrdersThemAfterARetry: B goes offline, comes back and goes
// offline again; the resolved notice of the first episode fails once and is retried,
// so it arrives after the firing notice of the second. The ids tie each episode's
// notices together and tell the episodes apart, and a receiver that orders by seq and
// status ends with B firing, as it is.
func TestNoticesCarryWhatOrdersThemAfterARetry(t *testing.T) {
	e := newEnv(t, alert.Options{Notify: true})
	e.addDevices(t, e.now, 1, "0010", "A", "B")
	e.start(t, "A", "B")
	silence := func() {
		for range 4 {
			e.report(t, "A")
			e.now = e.now.Add(10 * time.Minute)
		}
	}
	silence()
	if r := e.sweep(t); r.Fired != 1 {
		t.Fatalf("first episode: %+v", r)
	}
	e.report(t, "A", "B")
	e.now = e.now.Add(time.Minute)
	if r := e.sweep(t); r.Resolved != 1 {
		t.Fatalf("first episode's end: %+v", r)
	}
	silence()
	if r := e.sweep(t); r.Fired != 1 {
		t.Fatalf("second episode: %+v", r)
	}

	hook := &flaky{}
	srvHook := httptest.NewServer(hook)
	defer srvHook.Close()
	// One notice at a time, in the order enqueued; a failed one comes back 300ms later.
	srv := asynq.NewServer(e.rdb.Opt(), asynq.Config{
		Concurrency:              1,
		Queues:                   map[string]int{task.QueueNotify: 1},
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return 300 * time.Millisecond },
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		LogLevel:                 asynq.FatalLevel,
	})
	mux := asynq.NewServeMux()
	mux.Handle(task.TypeAlertNotify, newNotifier(t, alert.NotifierOptions{URL: srvHook.URL}))
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	waitFor(t, "three notices delivered", func() bool { return len(hook.got()) == 3 })

	got := hook.got()
	for _, n := range got {
		if n.Version != alert.NotificationVersion || n.GroupKey == "" || n.Timestamp.IsZero() || len(n.Alerts) != 1 {
			t.Fatalf("notice %+v", n)
		}
	}
	f1, f2, r1 := got[0].Alerts[0], got[1].Alerts[0], got[2].Alerts[0]
	if f1.Status != model.AlertFiring || f2.Status != model.AlertFiring || r1.Status != model.AlertResolved {
		t.Fatalf("arrival order %s, %s, %s; the test wants firing, firing, resolved (the retried one)", f1.Status, f2.Status, r1.Status)
	}
	if f1.ID == "" || f1.ID != r1.ID || f2.ID == f1.ID {
		t.Fatalf("ids: firing %q, resolved %q, next episode %q; want the first two equal and the third different", f1.ID, r1.ID, f2.ID)
	}
	if !f1.StartsAt.Equal(r1.StartsAt) || r1.EndsAt == nil || f1.EndsAt != nil || f2.EndsAt != nil || !f2.StartsAt.After(*r1.EndsAt) {
		t.Fatalf("episode times: %+v %+v %+v", f1, r1, f2)
	}
	if f1.Seq == 0 || r1.Seq != f1.Seq || f2.Seq <= f1.Seq {
		t.Fatalf("seq: firing %d, resolved %d, next episode %d; want the first two equal and the third greater", f1.Seq, r1.Seq, f2.Seq)
	}
	if !got[0].Timestamp.Before(got[2].Timestamp) || !got[2].Timestamp.Before(got[1].Timestamp) {
		t.Fatalf("notice timestamps %v %v %v do not say when each was built", got[0].Timestamp, got[1].Timestamp, got[2].Timestamp)
	}
	// The receiver applies the notices in arrival order.
	state := map[string]alert.AlertEntry{}
	for _, n := range got {
		for _, a := range n.Alerts {
			k := a.Kind + "/" + a.SN
			if cur, ok := state[k]; !ok || newer(a, cur) {
				state[k] = a
			}
		}
	}
	if b := state[model.AlertOffline+"/B"]; b.Status != model.AlertFiring || b.ID != f2.ID {
		t.Fatalf("receiver ends with %+v, want the second episode firing", b)
	}
}
