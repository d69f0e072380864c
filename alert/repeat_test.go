package alert_test

import (
	"testing"
	"time"

	"monitor/alert"
	"monitor/model"
)

// firingNoticesOf counts the pending firing notices that name sn, and returns the ids
// they gave its alert.
func firingNoticesOf(t *testing.T, e *env, sn string) (int, []string) {
	t.Helper()
	n, ids := 0, []string(nil)
	for _, b := range notifications(t, e.rdb.Opt()) {
		for _, a := range b.Alerts {
			if b.Status == model.AlertFiring && a.SN == sn {
				n++
				ids = append(ids, a.ID)
			}
		}
	}
	return n, ids
}

// TestRepeatEverySendsWhatStillFires: with RepeatEvery, an alert still firing is sent
// again once that long has passed since its last firing notice, and not before;
// without it, it is never sent again.
func TestRepeatEverySendsWhatStillFires(t *testing.T) {
	const every = 2 * time.Hour
	for _, tc := range []struct {
		name   string
		repeat time.Duration
		// want is the number of firing notices of B after each ten-minute step.
		want func(sinceFired time.Duration) int
	}{
		{"every 2h", every, func(d time.Duration) int { return 1 + int(d/every) }},
		{"unset", 0, func(time.Duration) int { return 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, alert.Options{Notify: true, RepeatEvery: tc.repeat})
			e.addDevices(t, e.now, 1, "0010", "A", "B")
			e.start(t, "A", "B")
			for range 4 {
				e.report(t, "A")
				e.now = e.now.Add(10 * time.Minute)
			}
			if r := e.sweep(t); r.Fired != 1 {
				t.Fatalf("B not fired: %+v", r)
			}
			fired := e.now
			for e.now.Sub(fired) < 5*time.Hour {
				e.report(t, "A")
				e.now = e.now.Add(10 * time.Minute)
				r := e.sweep(t)
				got, ids := firingNoticesOf(t, e, "B")
				if want := tc.want(e.now.Sub(fired)); got != want {
					t.Fatalf("%v after B fired: %d firing notices of B, want %d (sweep %+v)", e.now.Sub(fired), got, want, r)
				}
				for _, id := range ids {
					if id != ids[0] {
						t.Fatalf("a repeat has id %q, the first notice %q", id, ids[0])
					}
				}
			}
		})
	}
}
