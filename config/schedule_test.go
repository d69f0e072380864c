package config

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		in, spec string
		every    time.Duration
		ok       bool
	}{
		{"1m", "@every 1m0s", time.Minute, true},
		{" 90s ", "@every 1m30s", 90 * time.Second, true},
		{"*/5 * * * *", "*/5 * * * *", 0, true},
		{"17 3 * * *", "17 3 * * *", 0, true},
		{"@daily", "@daily", 0, true},
		{"500ms", "", 0, false},
		{"", "", 0, false},
		{"every minute", "", 0, false},
		{"61 * * * *", "", 0, false},
	} {
		s, err := ParseSchedule(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (s.Spec != tc.spec || s.Every != tc.every)) {
			t.Errorf("ParseSchedule(%q) = %+v, %v", tc.in, s, err)
		}
	}
	daily, err := ParseSchedule("17 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	if got := daily.Interval(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)); got != 24*time.Hour {
		t.Errorf("daily interval = %v", got)
	}
}

func TestParseSelector(t *testing.T) {
	sel, err := ParseSelector("city=0371, type=B503,tenant=7,line=12")
	if err != nil || sel.City != "0371" || sel.Type != "B503" || *sel.Tenant != 7 || *sel.Line != 12 || sel.All() {
		t.Fatalf("selector %+v, %v", sel, err)
	}
	if sel, err := ParseSelector("all"); err != nil || !sel.All() {
		t.Fatalf("all: %+v %v", sel, err)
	}
	for _, bad := range []string{"city", "city=", "depot=1", "tenant=x", "line=-1", "city=1,city=2", "all,city=1"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q) accepted", bad)
		}
	}
}

func TestScheduleKeysNamedInErrors(t *testing.T) {
	for key, env := range map[string]string{
		"MONITOR_SWEEP_EVERY":      "MONITOR_SWEEP_EVERY=soon",
		"MONITOR_LOG_PULL_EVERY":   "MONITOR_LOG_PULL_EVERY=99 * * * *",
		"MONITOR_LOG_PULL_SELECT":  "MONITOR_LOG_PULL_SELECT=depot=3",
		"MONITOR_COMMAND_TTL":      "MONITOR_COMMAND_TTL=10s",
		"MONITOR_RETENTION_DAYS":   "MONITOR_RETENTION_DAYS=-1",
		"MONITOR_UNSENT_THRESHOLD": "MONITOR_UNSENT_THRESHOLD=-5",
	} {
		file := t.TempDir() + "/empty.yaml"
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(file, []string{env})
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != key {
			t.Errorf("%s: error %v, want one naming %s", env, err, key)
		}
	}
}
