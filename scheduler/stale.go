package scheduler

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

var staleSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "monitor_periodic_stale_skipped_total",
	Help: "Periodic job runs skipped because a newer tick of the same job was already enqueued or started.",
}, []string{"type"})

// Collectors returns the metrics of SkipStale, which runs in the workers, for the process
// that runs workers to register on the registry its /metrics serves.
func Collectors() []prometheus.Collector { return []prometheus.Collector{staleSkipped} }

// MaxClockSkew bounds how far ahead of the recorder's clock a recorded tick may be and
// still be trusted. A tick further ahead (a host whose clock jumped forward) is
// overwritten instead of making every later tick look stale until real time catches up.
const MaxClockSkew = 5 * time.Minute

// LastTickKey is the Redis key holding the newest tick of jobType enqueued by a
// scheduler or started by a worker, in Unix seconds. It carries the periodic queue's
// hash tag, so on a cluster it shares a slot with that queue's asynq keys, but it is
// outside asynq's asynq: namespace.
func LastTickKey(jobType string) string { return "monitor:{periodic}:lasttick:" + jobType }

// advanceTick sets KEYS[1] to ARGV[1] unless it already holds a newer tick that is not
// beyond ARGV[2] (the caller's clock plus MaxClockSkew), and returns the tick it then
// holds: ARGV[1], or the newer one.
var advanceTick = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
local cur = v and tonumber(v)
local tick = tonumber(ARGV[1])
if cur and cur > tick and cur <= tonumber(ARGV[2]) then
	return cur
end
if cur ~= tick then
	redis.call('SET', KEYS[1], ARGV[1])
end
return tick
`)

// recordTick advances jobType's last tick to tick unless a newer one is recorded, and
// returns the newer one and true if there is.
func recordTick(ctx context.Context, rdb redis.Scripter, jobType string, tick, now time.Time) (time.Time, bool, error) {
	got, err := advanceTick.Run(ctx, rdb, []string{LastTickKey(jobType)},
		tick.Unix(), now.Add(MaxClockSkew).Unix()).Int64()
	if err != nil {
		return time.Time{}, false, err
	}
	return time.Unix(got, 0).UTC(), got > tick.Unix(), nil
}

// ParseTaskID returns the tick of a periodic job's task id (TaskID: the type, a colon
// and the tick in RFC 3339). ok is false for any other id, such as the random id of a
// task an operator enqueued by hand.
func ParseTaskID(jobType, id string) (tick time.Time, ok bool) {
	rest, found := strings.CutPrefix(id, jobType+":")
	if !found {
		return time.Time{}, false
	}
	tick, err := time.Parse(time.RFC3339, rest)
	return tick, err == nil
}

// SkipOptions configures SkipStale.
type SkipOptions struct {
	// Redis holds each job's last tick (LastTickKey); required.
	Redis redis.Scripter
	// Logger receives a line at info for each skipped run and at warn when the last
	// tick cannot be read; nil discards them.
	Logger *slog.Logger
	// Now is the clock that bounds a trusted recorded tick (MaxClockSkew); nil means time.Now.
	Now func() time.Time
}

// SkipStale wraps the handler of a periodic job so that a run whose tick is older than
// the job's newest tick enqueued (by a scheduler, see Options.Redis) or started (by a
// worker, recorded here) returns nil without running: after the periodic queue was
// paused, or the workers were down, the backlog of missed ticks completes at once and
// only the newest tick runs. A task whose id is not type:tick (a run enqueued by hand)
// always runs and records nothing. When the last tick cannot be read the run goes
// ahead, as it would without the wrapper.
func SkipStale(h asynq.Handler, o SkipOptions) asynq.Handler {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		tick, ok := ParseTaskID(t.Type(), id)
		if !ok {
			return h.ProcessTask(ctx, t)
		}
		newer, stale, err := recordTick(ctx, o.Redis, t.Type(), tick, now())
		switch {
		case err != nil:
			log.WarnContext(ctx, "periodic job: cannot read its last tick; running", "type", t.Type(), "err", err)
		case stale:
			staleSkipped.WithLabelValues(t.Type()).Inc()
			log.InfoContext(ctx, "periodic job skipped: a newer tick is enqueued or has run", "type", t.Type(),
				"tick", tick.UTC().Format(time.RFC3339), "newer", newer.Format(time.RFC3339))
			return nil
		}
		return h.ProcessTask(ctx, t)
	})
}
