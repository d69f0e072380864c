// Package scheduler runs monitor's periodic jobs on an asynq Scheduler.
package scheduler

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"monitor/config"
	"monitor/internal/asynqlog"
)

// New returns an asynq Scheduler with monitor's periodic jobs registered. Several
// replicas may run; each job's tasks carry an id derived from the job and its tick, so
// a tick is enqueued once however many schedulers enqueue it.
func New(opt asynq.RedisConnOpt, cfg *config.Config, log *slog.Logger) (*asynq.Scheduler, error) {
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("MONITOR_TIMEZONE: %w", err)
	}
	s := asynq.NewScheduler(opt, &asynq.SchedulerOpts{
		Location: loc,
		Logger:   asynqlog.New(log),
		LogLevel: asynq.WarnLevel,
	})
	return s, nil
}
