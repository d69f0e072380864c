package scheduler

import (
	"errors"
	"fmt"
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
	return Schedule{Spec: s, cron: c}, nil
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
