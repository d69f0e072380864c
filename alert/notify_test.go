package alert_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"monitor/alert"
	"monitor/internal/testenv"
	"monitor/task"
)

func newNotifier(t *testing.T, opt alert.NotifierOptions) *alert.Notifier {
	t.Helper()
	n, err := alert.NewNotifier(opt)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// deadlines is an http.RoundTripper that records the deadline of each request's
// context, which is every bound the notifier and its client put on the call.
type deadlines struct {
	next *http.Transport
	mu   sync.Mutex
	seen []time.Time // zero for a request without a deadline
}

func newDeadlines(t *testing.T) *deadlines {
	d := &deadlines{next: &http.Transport{}}
	t.Cleanup(d.next.CloseIdleConnections)
	return d
}

func (d *deadlines) RoundTrip(r *http.Request) (*http.Response, error) {
	at, _ := r.Context().Deadline()
	d.mu.Lock()
	d.seen = append(d.seen, at)
	d.mu.Unlock()
	return d.next.RoundTrip(r)
}

func (d *deadlines) all() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.seen...)
}

// TestNotifierAddsNoBoundOfItsOwn: the webhook call carries exactly its context's
// deadline, even one beyond task.NotifyTimeout, so nothing in the notifier ends it
// sooner than the task's deadline.
func TestNotifierAddsNoBoundOfItsOwn(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer hook.Close()
	rt := newDeadlines(t)
	n := newNotifier(t, alert.NotifierOptions{URL: hook.URL, Client: &http.Client{Transport: rt}})
	d := time.Now().Add(task.NotifyTimeout + 5*time.Second)
	ctx, cancel := context.WithDeadline(t.Context(), d)
	defer cancel()
	if err := n.ProcessTask(ctx, task.NewAlertNotifyTask([]byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	if got := rt.all(); len(got) != 1 || !got[0].Equal(d) {
		t.Fatalf("webhook request deadlines %v, want exactly the context's %v", got, d)
	}
}

// TestNotifierEndsAtItsContextDeadline: a webhook that does not answer is given up at
// the context's deadline, with the deadline's error, for a retry.
func TestNotifierEndsAtItsContextDeadline(t *testing.T) {
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hook.Close()
	defer close(release) // before Close, which waits for the handler
	rt := newDeadlines(t)
	n := newNotifier(t, alert.NotifierOptions{URL: hook.URL, Client: &http.Client{Transport: rt}})
	d := time.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithDeadline(t.Context(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.ProcessTask(ctx, task.NewAlertNotifyTask([]byte(`{}`))) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Until(d) + 10*time.Second):
		t.Fatal("the call outlived its context's deadline by 10s")
	}
	if returned := time.Now(); returned.Before(d) {
		t.Errorf("returned %v before the deadline", d.Sub(returned))
	}
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("unanswered webhook: %v, want the context's deadline error, retried", err)
	}
}

// TestNotifyTaskDeadlineBoundsTheWebhookCall runs the notifier under a real asynq server:
// the task carries task.NotifyTimeout, and the webhook call made for it carries the
// deadline asynq derives from it when it starts the task.
func TestNotifyTaskDeadlineBoundsTheWebhookCall(t *testing.T) {
	rdb := testenv.NewRedis(t)
	arrived := make(chan []byte, 1)
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		arrived <- body
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hook.Close()
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	rt := newDeadlines(t)

	srv := asynq.NewServer(rdb.Opt(), asynq.Config{
		Concurrency: 1,
		Queues:      map[string]int{task.QueueNotify: 1},
		LogLevel:    asynq.ErrorLevel,
	})
	mux := asynq.NewServeMux()
	mux.Handle(task.TypeAlertNotify, newNotifier(t, alert.NotifierOptions{URL: hook.URL, Client: &http.Client{Transport: rt}}))
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer func() {
		unblock() // Shutdown waits for the handler
		srv.Shutdown()
	}()
	client := asynq.NewClient(rdb.Opt())
	defer func() {
		if err := client.Close(); err != nil {
			t.Error(err)
		}
	}()
	insp := asynq.NewInspector(rdb.Opt())
	defer func() {
		if err := insp.Close(); err != nil {
			t.Error(err)
		}
	}()

	before := time.Now()
	info, err := client.Enqueue(task.NewAlertNotifyTask([]byte(`{"alerts":[]}`)))
	if err != nil {
		t.Fatal(err)
	}
	if body := <-arrived; string(body) != `{"alerts":[]}` {
		t.Fatalf("webhook got %q", body)
	}
	after := time.Now()
	ti, err := insp.GetTaskInfo(task.QueueNotify, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ti.State != asynq.TaskStateActive || ti.Timeout != task.NotifyTimeout || !ti.Deadline.IsZero() {
		t.Fatalf("running task: state %v, timeout %v, deadline %v; want active with timeout %v and no fixed deadline",
			ti.State, ti.Timeout, ti.Deadline, task.NotifyTimeout)
	}
	got := rt.all()
	// asynq sets the deadline task.NotifyTimeout after it dequeues the task, which
	// happens between before and after.
	if len(got) != 1 || got[0].Before(before.Add(task.NotifyTimeout)) || got[0].After(after.Add(task.NotifyTimeout)) {
		t.Fatalf("webhook request deadline %v, want task.NotifyTimeout (%v) after the task started, within [%v, %v]",
			got, task.NotifyTimeout, before.Add(task.NotifyTimeout), after.Add(task.NotifyTimeout))
	}
	unblock()
	testenv.WaitFor(t, 10*time.Second, "the notification to complete", func() bool {
		_, err := insp.GetTaskInfo(task.QueueNotify, info.ID)
		return errors.Is(err, asynq.ErrTaskNotFound)
	})
}

// signed is a webhook that checks X-Monitor-Signature itself, as a receiver would.
type signed struct {
	secret string
	mu     sync.Mutex
	header []string // the header of each request, "" when absent
	valid  []bool
}

func (s *signed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	mac := hmac.New(sha256.New, []byte(s.secret))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	got := r.Header.Get("X-Monitor-Signature")
	s.mu.Lock()
	s.header = append(s.header, got)
	s.valid = append(s.valid, hmac.Equal([]byte(got), []byte(want)))
	s.mu.Unlock()
}

// TestNotifierSignsTheBodyWhenASecretIsSet: with a secret each POST carries the hex
// HMAC-SHA256 of its body, as a receiver computes it; without one, no signature.
func TestNotifierSignsTheBodyWhenASecretIsSet(t *testing.T) {
	const secret = "webhook-shared-secret"
	body := []byte(`{"version":"1","status":"firing","alerts":[{"id":"0b251864ee6f88fc","kind":"device_offline","sn":"A"}]}`)
	for _, tc := range []struct {
		name, secret string
	}{{"secret set", secret}, {"no secret", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := &signed{secret: secret}
			hook := httptest.NewServer(rcv)
			defer hook.Close()
			n := newNotifier(t, alert.NotifierOptions{URL: hook.URL, Secret: tc.secret})
			if err := n.ProcessTask(t.Context(), task.NewAlertNotifyTask(body)); err != nil {
				t.Fatal(err)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.header) != 1 {
				t.Fatalf("%d requests", len(rcv.header))
			}
			switch {
			case tc.secret != "" && !rcv.valid[0]:
				t.Fatalf("X-Monitor-Signature %q does not verify with the secret", rcv.header[0])
			case tc.secret == "" && rcv.header[0] != "":
				t.Fatalf("X-Monitor-Signature %q sent without a secret", rcv.header[0])
			}
		})
	}
}

func TestNewNotifierRefusesABadURL(t *testing.T) {
	if _, err := alert.NewNotifier(alert.NotifierOptions{URL: "ftp://x"}); err == nil {
		t.Fatal("ftp URL accepted")
	}
}
