package scheduler

import (
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
