package scheduler

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a periodic job's schedule: a Go duration ("5m", run every five minutes)
// or a standard five-field cron spec ("17 3 * * *", in the configured time zone).
type Schedule struct {
	// Spec is the schedule in the form asynq's Scheduler takes: "@every 5m0s" or the cron spec.
	Spec string
	// Every is the period of a duration schedule, zero for a cron spec.
	Every time.Duration
	cron  cron.Schedule
}

// ParseSchedule parses a Go duration of at least one second or a cron spec.
func ParseSchedule(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Schedule{}, errors.New("is empty: want a Go duration like 1m or a cron spec like \"*/5 * * * *\"")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < time.Second {
			return Schedule{}, fmt.Errorf("%v is below 1s", d)
		}
		return Schedule{Spec: "@every " + d.String(), Every: d}, nil
	}
	c, err := cron.ParseStandard(s)
	if err != nil {
		return Schedule{}, fmt.Errorf("%q is neither a Go duration like 1m nor a cron spec: %v", s, err)
	}
	if err := checkCronSteps(s); err != nil {
		return Schedule{}, fmt.Errorf("cron spec %q: %v", s, err)
	}
	return Schedule{Spec: s, cron: c}, nil
}

// cronFields are the five fields of a standard cron spec with the values each takes.
var cronFields = [5]struct {
	name     string
	min, max int
}{{"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 6}}

// checkCronSteps refuses a step that cannot fit in its field, which cron.ParseStandard
// accepts: "*/61" in the minute field would run once an hour (at minute 0) instead of
// being refused. A step must be from 1 to the field's span (59 for minutes). Values out
// of range are refused by ParseStandard itself.
func checkCronSteps(spec string) error {
	fields := strings.Fields(spec)
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "TZ=") || strings.HasPrefix(fields[0], "CRON_TZ=")) {
		fields = fields[1:]
	}
	if len(fields) != len(cronFields) {
		return nil // a descriptor such as @daily, which has no steps
	}
	for i, field := range fields {
		f := cronFields[i]
		for _, part := range strings.Split(field, ",") {
			_, step, ok := strings.Cut(part, "/")
			if !ok {
				continue
			}
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 || n > f.max-f.min {
				return fmt.Errorf("%s field %q: step %s is out of range (1-%d)", f.name, field, step, f.max-f.min)
			}
		}
	}
	return nil
}

// Tick returns the period bucket that t falls in: t truncated to the period for a
// duration, to the minute for a cron spec (cron fires at most once a minute). Every
// replica of the scheduler that fires within one bucket computes the same tick.
func (s Schedule) Tick(t time.Time) time.Time {
	if s.Every > 0 {
		return t.Truncate(s.Every)
	}
	return t.Truncate(time.Minute)
}

// Interval is the time between two runs: the period, or for a cron spec the gap between
// its next two activations after now (at least a minute).
func (s Schedule) Interval(now time.Time) time.Duration {
	if s.Every > 0 {
		return s.Every
	}
	next := s.cron.Next(now)
	return max(s.cron.Next(next).Sub(next), time.Minute)
}
