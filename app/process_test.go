package app

import (
	"errors"
	"monitor/config"
	"monitor/task"
	"slices"
	"testing"
	"time"
)

func TestSchedulerOptionsFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.LogPullEvery = "0 2 * * *"
	cfg.LogPullSelect = "city=0371"
	opt, err := schedulerOptions(cfg, nil)
	jobs := opt.Jobs
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, j := range jobs {
		types = append(types, j.Type)
		if j.Type == task.TypeLogPull && string(j.Payload) != "city=0371" {
			t.Fatalf("log pull payload %q", j.Payload)
		}
	}
	want := []string{task.TypeSweep, task.TypeCommandSync, task.TypeRetention, task.TypeLogPull}
	if !slices.Equal(types, want) {
		t.Fatalf("jobs %v, want %v", types, want)
	}
	cfg.SweepEvery = "every minute"
	var ke *config.KeyError
	if _, err := schedulerOptions(cfg, nil); !errors.As(err, &ke) || ke.Key != "MONITOR_SWEEP_EVERY" {
		t.Fatalf("bad schedule: %v", err)
	}
}

func TestSweepOptionsFromConfig(t *testing.T) {
	cfg := config.Default()
	if opt := sweepOptions(cfg, nil); opt.GroupWait != 30*time.Second || opt.GroupInterval != 5*time.Minute {
		t.Fatalf("default group wait %v, interval %v; want 30s, 5m", opt.GroupWait, opt.GroupInterval)
	}
	cfg.AlertGroupWait, cfg.AlertGroupInterval = 0, 2*time.Minute
	if opt := sweepOptions(cfg, nil); opt.GroupWait != 0 || opt.GroupInterval != 2*time.Minute {
		t.Fatalf("group wait %v, interval %v; want the configured 0, 2m", opt.GroupWait, opt.GroupInterval)
	}
}
