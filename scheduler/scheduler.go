// Package scheduler runs monitor's periodic jobs on an asynq Scheduler.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"monitor/internal/asynqlog"
	"monitor/task"
)

// Job is one periodic job: a task type enqueued on the periodic queue on a schedule.
type Job struct {
	Type     string
	Schedule Schedule
	Payload  []byte
	// Timeout bounds one run; zero means the schedule's interval, at least a minute.
	Timeout time.Duration
}

// Options configures New.
type Options struct {
	// Jobs are the periodic jobs to register; at least one.
	Jobs []Job
	// Location is where cron specs are read; nil means UTC.
	Location *time.Location
	// Logger receives the scheduler's warnings and errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock that picks each firing's tick; nil means time.Now.
	Now func() time.Time
	// Redis, when set, receives each job's newest enqueued tick (LastTickKey), which
	// SkipStale reads to skip the older ticks of a backlog. nil records nothing: SkipStale
	// then skips only ticks older than one a worker has started.
	Redis redis.Scripter
}

func (o *Options) withDefaults() (Options, error) {
	opt := *o
	if len(opt.Jobs) == 0 {
		return opt, errors.New("scheduler: no jobs")
	}
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	seen := make(map[string]bool, len(opt.Jobs))
	for _, j := range opt.Jobs {
		if j.Type == "" || j.Schedule.Spec == "" {
			return opt, fmt.Errorf("scheduler: job %q has no type or schedule", j.Type)
		}
		if seen[j.Type] {
			return opt, fmt.Errorf("scheduler: job %s is registered twice", j.Type)
		}
		seen[j.Type] = true
	}
	return opt, nil
}

// New returns an asynq Scheduler with the jobs of opt registered. Several replicas may
// run: each enqueue carries the TaskID job:tick, where tick is the period bucket the
// firing falls in (Schedule.Tick), so a second replica firing in the same bucket gets
// asynq.ErrTaskIDConflict and the tick runs once. Each task is retained as long as one
// period after it completes, so a replica firing late in the bucket still conflicts; the
// next bucket has a new id, so retention never blocks a later tick. With opt.Redis each
// successful enqueue also records its tick (LastTickKey) for SkipStale.
func New(redis asynq.RedisConnOpt, o Options) (*asynq.Scheduler, error) {
	opt, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	// Each job has its own lock, held from PreEnqueueFunc to PostEnqueueFunc, which
	// asynq calls around every Enqueue in the firing's goroutine: a firing writes its
	// TaskID into the job's options slice, which asynq shares between the job's firings,
	// so two firings of one job must not overlap. Firings of other jobs never wait: a
	// hung enqueue (bounded by the Redis client's timeouts) stalls only its own job.
	// asynq reads opts inside Enqueue and calls no hook between that read and the Redis
	// call, so the lock cannot be released before the round trip; holding none would
	// need a cron loop of our own. asynq's heartbeat also reads opts, without the lock.
	locks := make(map[string]*sync.Mutex, len(opt.Jobs))
	byType := make(map[string]Job, len(opt.Jobs))
	for _, j := range opt.Jobs {
		byType[j.Type] = j
		locks[j.Type] = new(sync.Mutex)
	}
	log := opt.Logger
	s := asynq.NewScheduler(redis, &asynq.SchedulerOpts{
		Location: opt.Location,
		Logger:   asynqlog.New(log),
		LogLevel: asynq.WarnLevel,
		// opts shares its backing array with the options given to Register, whose first
		// element is the TaskID placeholder: overwriting it sets this firing's id.
		PreEnqueueFunc: func(t *asynq.Task, opts []asynq.Option) {
			locks[t.Type()].Lock()
			opts[0] = asynq.TaskID(TaskID(byType[t.Type()], opt.Now()))
		},
		// asynq calls PostEnqueueFunc, then on an error EnqueueErrorHandler: the first knows
		// the job from info only on success, the second from its task.
		PostEnqueueFunc: func(info *asynq.TaskInfo, err error) {
			if err == nil {
				locks[info.Type].Unlock()
			}
			switch {
			case errors.Is(err, asynq.ErrTaskIDConflict):
				log.Debug("periodic job already enqueued for this tick by another scheduler", "err", err)
			case err != nil:
				log.Error("enqueue periodic job", "err", err)
			default:
				log.Debug("enqueued periodic job", "type", info.Type, "id", info.ID)
				if opt.Redis != nil {
					recordEnqueued(opt.Redis, info, opt.Now(), log)
				}
			}
		},
		EnqueueErrorHandler: func(t *asynq.Task, _ []asynq.Option, _ error) {
			locks[t.Type()].Unlock()
		},
	})
	for _, j := range opt.Jobs {
		timeout := j.Timeout
		if timeout == 0 {
			timeout = max(j.Schedule.Interval(opt.Now()), time.Minute)
		}
		_, err := s.Register(j.Schedule.Spec, asynq.NewTask(j.Type, j.Payload),
			asynq.TaskID(j.Type), // placeholder, replaced in PreEnqueueFunc
			asynq.Queue(task.QueuePeriodic),
			asynq.MaxRetry(3),
			asynq.Timeout(timeout),
			asynq.Retention(j.Schedule.Interval(opt.Now())))
		if err != nil {
			return nil, fmt.Errorf("register %s (%s): %w", j.Type, j.Schedule.Spec, err)
		}
	}
	return s, nil
}

// recordEnqueued advances the job's last tick to the tick of the task just enqueued, so
// that SkipStale skips the older ticks still queued. It runs after the job's lock is
// released; a failure is logged and costs only the skipping of those older ticks.
func recordEnqueued(rdb redis.Scripter, info *asynq.TaskInfo, now time.Time, log *slog.Logger) {
	tick, ok := ParseTaskID(info.Type, info.ID)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := recordTick(ctx, rdb, info.Type, tick, now); err != nil {
		log.Warn("record the tick of a periodic job", "type", info.Type, "id", info.ID, "err", err)
	}
}

// TaskID is the id of job's task for the tick that t falls in.
func TaskID(j Job, t time.Time) string {
	return j.Type + ":" + j.Schedule.Tick(t).UTC().Format(time.RFC3339)
}
