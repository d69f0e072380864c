// Package scheduler runs monitor's periodic jobs on an asynq Scheduler.
package scheduler

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"monitor/config"
	"monitor/internal/asynqlog"
	"monitor/task"
)

// Job is one periodic job: a task type enqueued on the periodic queue on a schedule.
type Job struct {
	Type     string
	Schedule config.Schedule
	Payload  []byte
	// Timeout bounds one run.
	Timeout time.Duration
}

// Jobs returns the periodic jobs cfg asks for: the offline sweep, the command sync, the
// retention and, when MONITOR_LOG_PULL_EVERY is set, the log pull.
func Jobs(cfg *config.Config) ([]Job, error) {
	var jobs []Job
	add := func(key, spec, typ string, payload []byte, timeout time.Duration) error {
		s, err := config.ParseSchedule(spec)
		if err != nil {
			return &config.KeyError{Key: key, Msg: err.Error()}
		}
		if timeout == 0 {
			timeout = max(s.Interval(time.Now()), time.Minute)
		}
		jobs = append(jobs, Job{Type: typ, Schedule: s, Payload: payload, Timeout: timeout})
		return nil
	}
	err := errors.Join(
		add("MONITOR_SWEEP_EVERY", cfg.SweepEvery, task.TypeSweep, nil, 0),
		add("MONITOR_COMMAND_SYNC_EVERY", cfg.CommandSyncEvery, task.TypeCommandSync, nil, 0),
		add("MONITOR_RETENTION_EVERY", cfg.RetentionEvery, task.TypeRetention, nil, 12*time.Hour),
	)
	if err == nil && cfg.LogPullEvery != "" {
		err = add("MONITOR_LOG_PULL_EVERY", cfg.LogPullEvery, task.TypeLogPull, []byte(cfg.LogPullSelect), 0)
	}
	return jobs, err
}

// New returns an asynq Scheduler with monitor's periodic jobs registered. Several
// replicas may run: each enqueue carries the TaskID job:tick, where tick is the period
// bucket the firing falls in (Schedule.Tick), so a second replica firing in the same
// bucket gets asynq.ErrTaskIDConflict and the tick runs once. Each task is retained as
// long as one period after it completes, so a replica firing late in the bucket still
// conflicts; the next bucket has a new id, so retention never blocks a later tick.
func New(opt asynq.RedisConnOpt, cfg *config.Config, log *slog.Logger) (*asynq.Scheduler, error) {
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("MONITOR_TIMEZONE: %w", err)
	}
	jobs, err := Jobs(cfg)
	if err != nil {
		return nil, err
	}
	return newScheduler(opt, loc, jobs, log, time.Now)
}

func newScheduler(opt asynq.RedisConnOpt, loc *time.Location, jobs []Job, log *slog.Logger, now func() time.Time) (*asynq.Scheduler, error) {
	byType := make(map[string]Job, len(jobs))
	for _, j := range jobs {
		byType[j.Type] = j
	}
	// enqueuing is held from PreEnqueueFunc to PostEnqueueFunc, which asynq calls around
	// every Enqueue in the firing's goroutine: each firing of a job writes the shared
	// options slice, and two firings must not overlap in writing and reading it.
	var enqueuing sync.Mutex
	s := asynq.NewScheduler(opt, &asynq.SchedulerOpts{
		Location: loc,
		Logger:   asynqlog.New(log),
		LogLevel: asynq.WarnLevel,
		// opts shares its backing array with the options given to Register, whose first
		// element is the TaskID placeholder: overwriting it sets this firing's id.
		PreEnqueueFunc: func(t *asynq.Task, opts []asynq.Option) {
			enqueuing.Lock()
			if j, ok := byType[t.Type()]; ok && len(opts) > 0 {
				opts[0] = asynq.TaskID(TaskID(j, now()))
			}
		},
		PostEnqueueFunc: func(info *asynq.TaskInfo, err error) {
			defer enqueuing.Unlock()
			switch {
			case errors.Is(err, asynq.ErrTaskIDConflict):
				log.Debug("periodic job already enqueued for this tick by another scheduler", "err", err)
			case err != nil:
				log.Error("enqueue periodic job", "err", err)
			default:
				log.Debug("enqueued periodic job", "type", info.Type, "id", info.ID)
			}
		},
	})
	for _, j := range jobs {
		_, err := s.Register(j.Schedule.Spec, asynq.NewTask(j.Type, j.Payload),
			asynq.TaskID(j.Type), // placeholder, replaced in PreEnqueueFunc
			asynq.Queue(task.QueuePeriodic),
			asynq.MaxRetry(3),
			asynq.Timeout(j.Timeout),
			asynq.Retention(j.Schedule.Interval(now())))
		if err != nil {
			return nil, fmt.Errorf("register %s (%s): %w", j.Type, j.Schedule.Spec, err)
		}
	}
	return s, nil
}

// TaskID is the id of job's task for the tick that t falls in.
func TaskID(j Job, t time.Time) string {
	return j.Type + ":" + j.Schedule.Tick(t).UTC().Format(time.RFC3339)
}
