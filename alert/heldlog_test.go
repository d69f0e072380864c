package alert_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"monitor/alert"
	"monitor/model"
)

// syncBuffer is a bytes.Buffer safe for a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// The held-back warning is logged when holding back starts and when it ends, not at
// every sweep in between.
func TestHeldBackIsLoggedOnChangeOnly(t *testing.T) {
	e := newEnv(t, alert.Options{})
	var logs syncBuffer
	sw, err := alert.NewSweeper(e.db, e.fl, e.enqueuer, alert.Options{OfflineAfter: offlineAfter,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	process := func() {
		t.Helper()
		if err := sw.ProcessTask(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	e.addDevices(t, e.now, 1, "0010", "A", "B", "C")
	process() // seeds
	for range 4 {
		e.report(t, "A", "B", "C")
		e.now = e.now.Add(10 * time.Minute)
	}
	// Intake stops: every device falls silent, none may fire, sweep after sweep.
	for range 10 {
		e.now = e.now.Add(10 * time.Minute)
		process()
	}
	if n := logs.count("offline alerts held back"); n != 1 {
		t.Fatalf("held-back warning logged %d times over 10 held sweeps, want 1:\n%s", n, logs.b.String())
	}
	// Intake works again; C stays silent and fires once intake has worked long enough.
	for range 6 {
		e.report(t, "A", "B")
		e.now = e.now.Add(10 * time.Minute)
		process()
	}
	if got := keys(alertsOf(t, e.db, model.AlertFiring)); !slices.Equal(got, []string{"device_offline/C"}) {
		t.Fatalf("firing = %v, want C", got)
	}
	if n := logs.count("no longer held back"); n != 1 {
		t.Fatalf("end of holding logged %d times, want 1:\n%s", n, logs.b.String())
	}
	if n := logs.count("offline alerts held back"); n > 2 {
		t.Fatalf("held-back warning logged %d times:\n%s", n, logs.b.String())
	}
}
