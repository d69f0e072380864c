package scheduler

import (
	"strings"
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
		{"CRON_TZ=Asia/Shanghai 17 3 * * *", "CRON_TZ=Asia/Shanghai 17 3 * * *", 0, true},
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

// TestParseScheduleRefusesOutOfRangeCronFields: robfig's ParseStandard refuses values out
// of range but takes any step, so "*/61 * * * *" ran hourly; every field's steps and
// values must be within the field (minute 0-59, hour 0-23, day of month 1-31, month
// 1-12, day of week 0-6).
func TestParseScheduleRefusesOutOfRangeCronFields(t *testing.T) {
	for _, spec := range []string{
		// steps
		"*/61 * * * *", "*/60 * * * *", "5/60 * * * *", "0-30/61 * * * *", "1,*/90 * * * *",
		"0 */24 * * *", "0 */25 * * *", "0 0 */31 * *", "0 0 */32 * *", "0 0 1 */12 *", "0 0 1 */13 *",
		"0 0 * * */7", "0 0 * * mon-fri/7", "*/0 * * * *", "CRON_TZ=UTC */61 * * * *",
		// values
		"60 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 32 * *", "0 0 1 0 *", "0 0 1 13 *", "0 0 * * 8",
		"0-60 * * * *",
	} {
		if s, err := ParseSchedule(spec); err == nil {
			t.Errorf("ParseSchedule(%q) = %+v, want an error", spec, s)
		}
	}
	if _, err := ParseSchedule("*/61 * * * *"); err == nil || !strings.Contains(err.Error(), "minute") || !strings.Contains(err.Error(), "61") {
		t.Errorf("*/61: err = %v, want one naming the minute field and the step", err)
	}
	for _, spec := range []string{
		"*/59 * * * *", "*/5 * * * *", "0-30/15 * * * *", "5/10 * * * *", "0 */23 * * *", "0 */2 * * *",
		"0 0 */30 * *", "0 0 1 */11 *", "0 0 1 */3 *", "0 0 * * */6", "0 0 * * 1-5/2", "17 3 * * mon-fri",
		"0 0 1 jan,jul *", "59 23 31 12 6", "0 0 1 1 0", "@hourly", "CRON_TZ=UTC 0 3 * * *",
	} {
		if _, err := ParseSchedule(spec); err != nil {
			t.Errorf("ParseSchedule(%q): %v", spec, err)
		}
	}
}
