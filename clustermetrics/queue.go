// Package clustermetrics exports as Prometheus metrics what monitor's shared stores
// hold: the asynq queues, the periodic jobs' ticks and Redis's memory, read from Redis
// directly (QueueCollector), and the fleet's devices, alerts and commands, read from the
// database (FleetCollector).
//
// asynq's Inspector.GetQueueInfo, which asynq's x/metrics calls on every scrape, runs Lua
// scripts whose work grows with the queue's groups (asynq issue #1160), blocking Redis
// meanwhile, and fails when a sampled task is gone. The QueueCollector reads each queue
// with two pipelined round trips of O(1) commands: one for the sizes, counters and group
// names (at most MaxGroups of them), one for those groups' sizes and oldest reports. It
// caches the result for MaxAge, so any number of scrapes and replicas costs Redis at most
// one read per replica and MaxAge.
//
// The values are the cluster's, not the process's: every replica that serves them
// serves the same numbers, so dashboards and rules take max by (queue, state), never sum.
package clustermetrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"monitor/backend"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Job is a periodic job whose newest tick is exported, with its period.
type Job struct {
	Type    string
	Period  time.Duration
	TickKey string // the Redis key holding the job's newest tick in Unix seconds
}

// QueueOptions configures New.
type QueueOptions struct {
	// Queues are the asynq queues to export; at least one.
	Queues []string
	// Discover, when set, also exports every other queue asynq lists (its set
	// asynq:queues) that Discover accepts: the ingest queues of a former
	// MONITOR_INGEST_QUEUES, which workers still drain, are part of the backlog too.
	Discover func(queue string) bool
	// Jobs are the periodic jobs whose newest tick is exported; optional.
	Jobs []Job
	// MaxGroups bounds the groups read per queue and scrape (default 1024). A queue with
	// more groups has its aggregating size extrapolated from the MaxGroups read.
	MaxGroups int
	// MaxAge is how long one read of Redis serves scrapes (default 5s); Timeout bounds
	// the read (default 2s).
	MaxAge, Timeout time.Duration
	// Logger hears about failed reads; nil discards them.
	Logger *slog.Logger
}

func (o QueueOptions) withDefaults() (QueueOptions, error) {
	o.MaxGroups = cmp.Or(o.MaxGroups, 1024)
	o.MaxAge = cmp.Or(o.MaxAge, 5*time.Second)
	o.Timeout = cmp.Or(o.Timeout, 2*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case len(o.Queues) == 0:
		return o, errors.New("clustermetrics: no queues")
	case o.MaxGroups < 1 || o.MaxAge < 0 || o.Timeout <= 0:
		return o, fmt.Errorf("clustermetrics: max groups %d, max age %v, timeout %v", o.MaxGroups, o.MaxAge, o.Timeout)
	}
	for _, j := range o.Jobs {
		if j.Type == "" || j.TickKey == "" || j.Period <= 0 {
			return o, fmt.Errorf("clustermetrics: job %q needs a tick key and a period", j.Type)
		}
	}
	return o, nil
}

// States are the task states exported as monitor_queue_size{state}: asynq's, plus
// aggregating, the reports waiting in a group to be batched.
var States = []string{"pending", "active", "scheduled", "retry", "archived", "completed", "aggregating"}

var (
	descSize = prometheus.NewDesc("monitor_queue_size",
		"Tasks in the queue by state, read from Redis (the cluster's value: take max across replicas, never sum).",
		[]string{"queue", "state"}, nil)
	descLatency = prometheus.NewDesc("monitor_queue_latency_seconds",
		"Age of the queue's oldest pending task.", []string{"queue"}, nil)
	descAggregatingAge = prometheus.NewDesc("monitor_queue_aggregating_age_seconds",
		"Age of the oldest task waiting in one of the queue's groups (of the groups read).", []string{"queue"}, nil)
	descGroups = prometheus.NewDesc("monitor_queue_groups",
		"Groups of the queue that hold tasks.", []string{"queue"}, nil)
	descProcessed = prometheus.NewDesc("monitor_queue_processed_total",
		"Tasks of the queue processed, successfully or not, by every worker (asynq's counter).", []string{"queue"}, nil)
	descFailed = prometheus.NewDesc("monitor_queue_failed_total",
		"Task attempts of the queue that failed, by every worker (asynq's counter).", []string{"queue"}, nil)
	descPaused = prometheus.NewDesc("monitor_queue_paused",
		"1 when the queue is paused.", []string{"queue"}, nil)
	descTick = prometheus.NewDesc("monitor_periodic_last_tick_timestamp_seconds",
		"Newest tick of the periodic job enqueued or started by any scheduler or worker.", []string{"type"}, nil)
	descPeriod = prometheus.NewDesc("monitor_periodic_period_seconds",
		"Period of the periodic job's schedule.", []string{"type"}, nil)
	descRedisUsed = prometheus.NewDesc("monitor_redis_used_memory_bytes",
		"Memory Redis uses (INFO memory used_memory).", nil, nil)
	descRedisMax = prometheus.NewDesc("monitor_redis_maxmemory_bytes",
		"Redis's maxmemory; 0 when unlimited.", nil, nil)
	descUp = prometheus.NewDesc("monitor_queue_read_up",
		"1 when the last read of the queues from Redis succeeded.", nil, nil)
	descReadSeconds = prometheus.NewDesc("monitor_queue_read_seconds",
		"Time the last read of the queues from Redis took.", nil, nil)
)

// queueState is one queue as read from Redis.
type queueState struct {
	name              string
	sizes             [7]int64 // by States
	latency           time.Duration
	aggregatingAge    time.Duration
	groups            int64
	processed, failed int64
	paused            bool
}

// snapshot is one read of everything the QueueCollector exports.
type snapshot struct {
	queues            []queueState
	ticks             map[string]int64 // job type → Unix seconds; absent when never ticked
	memoryKnown       bool
	redisUsed, maxMem int64
	took              time.Duration
}

// QueueCollector is a prometheus.QueueCollector of the queues' state.
type QueueCollector struct {
	rdb   redis.UniversalClient
	opt   QueueOptions
	cache cached[snapshot]
}

// New returns a QueueCollector reading rdb.
func NewQueueCollector(rdb redis.UniversalClient, o QueueOptions) (*QueueCollector, error) {
	opt, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &QueueCollector{rdb: rdb, opt: opt}, nil
}

// Describe sends the descriptors of every metric the QueueCollector exports.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSize, descLatency, descAggregatingAge, descGroups, descProcessed, descFailed,
		descPaused, descTick, descPeriod, descRedisUsed, descRedisMax, descUp, descReadSeconds} {
		ch <- d
	}
}

// Collect sends the metrics of the newest read, reading Redis again when it is older than MaxAge.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	snap, err := c.cache.get(c.opt.MaxAge, c.opt.Timeout, c.readAll, c.opt.Logger, "the queues' metrics from redis")
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descReadSeconds, prometheus.GaugeValue, snap.took.Seconds())
	for _, q := range snap.queues {
		for i, state := range States {
			ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(q.sizes[i]), q.name, state)
		}
		ch <- prometheus.MustNewConstMetric(descLatency, prometheus.GaugeValue, q.latency.Seconds(), q.name)
		ch <- prometheus.MustNewConstMetric(descAggregatingAge, prometheus.GaugeValue, q.aggregatingAge.Seconds(), q.name)
		ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(q.groups), q.name)
		ch <- prometheus.MustNewConstMetric(descProcessed, prometheus.CounterValue, float64(q.processed), q.name)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(q.failed), q.name)
		paused := 0.0
		if q.paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(descPaused, prometheus.GaugeValue, paused, q.name)
	}
	for _, j := range c.opt.Jobs {
		ch <- prometheus.MustNewConstMetric(descPeriod, prometheus.GaugeValue, j.Period.Seconds(), j.Type)
		if tick, ok := snap.ticks[j.Type]; ok {
			ch <- prometheus.MustNewConstMetric(descTick, prometheus.GaugeValue, float64(tick), j.Type)
		}
	}
	if snap.memoryKnown {
		ch <- prometheus.MustNewConstMetric(descRedisUsed, prometheus.GaugeValue, float64(snap.redisUsed))
		ch <- prometheus.MustNewConstMetric(descRedisMax, prometheus.GaugeValue, float64(snap.maxMem))
	}
}

// readAll reads every queue, tick and Redis's memory once, uncached.
func (c *QueueCollector) readAll(ctx context.Context) (snapshot, error) {
	start := time.Now()
	var snap snapshot
	queues := c.opt.Queues
	if c.opt.Discover != nil {
		listed, err := c.rdb.SMembers(ctx, allQueues).Result()
		if err != nil {
			return snap, fmt.Errorf("list queues: %w", err)
		}
		slices.Sort(listed)
		queues = slices.Clone(queues)
		for _, q := range listed {
			if !slices.Contains(c.opt.Queues, q) && c.opt.Discover(q) {
				queues = append(queues, q)
			}
		}
	}
	for _, q := range queues {
		qs, err := c.readQueue(ctx, q)
		if err != nil {
			return snap, fmt.Errorf("queue %s: %w", q, err)
		}
		snap.queues = append(snap.queues, qs)
	}
	if len(c.opt.Jobs) > 0 {
		snap.ticks = make(map[string]int64, len(c.opt.Jobs))
		// One GET each rather than an MGET: in a Redis Cluster the keys need not share a slot.
		pipe := c.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(c.opt.Jobs))
		for i, j := range c.opt.Jobs {
			cmds[i] = pipe.Get(ctx, j.TickKey)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return snap, fmt.Errorf("periodic ticks: %w", err)
		}
		for i, j := range c.opt.Jobs {
			if n, err := cmds[i].Int64(); err == nil {
				snap.ticks[j.Type] = n
			}
		}
	}
	// The embedded Redis (miniredis) has no INFO memory: the memory gauges are left out then.
	// On a cluster they are the fullest master's, the one that refuses writes first.
	if used, limit, err := backend.MemoryUsage(ctx, c.rdb); err == nil {
		snap.memoryKnown = true
		snap.redisUsed, snap.maxMem = used, limit
	}
	snap.took = time.Since(start)
	return snap, nil
}

// allQueues is asynq's set of every queue a task was ever enqueued to.
const allQueues = "asynq:queues"

// readQueue reads queue q in two pipelined round trips. Every key of q carries the hash
// tag {q}, so in a Redis Cluster both go to the one node that holds q.
func (c *QueueCollector) readQueue(ctx context.Context, q string) (queueState, error) {
	qs := queueState{name: q}
	prefix := "asynq:{" + q + "}:"
	pipe := c.rdb.Pipeline()
	pending := pipe.LLen(ctx, prefix+"pending")
	active := pipe.LLen(ctx, prefix+"active")
	var zsets [4]*redis.IntCmd
	for i, s := range []string{"scheduled", "retry", "archived", "completed"} {
		zsets[i] = pipe.ZCard(ctx, prefix+s)
	}
	processed := pipe.Get(ctx, prefix+"processed")
	failed := pipe.Get(ctx, prefix+"failed")
	paused := pipe.Exists(ctx, prefix+"paused")
	oldest := pipe.LRange(ctx, prefix+"pending", -1, -1)
	groups := pipe.SCard(ctx, prefix+"groups")
	// SRANDMEMBER with a positive count returns distinct members, all of them when the
	// set is no larger: the group names, bounded by MaxGroups.
	names := pipe.SRandMemberN(ctx, prefix+"groups", int64(c.opt.MaxGroups))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return qs, err
	}
	qs.sizes[0], qs.sizes[1] = pending.Val(), active.Val()
	for i, z := range zsets {
		qs.sizes[2+i] = z.Val()
	}
	qs.processed, _ = processed.Int64() // absent until the queue's first task: 0
	qs.failed, _ = failed.Int64()
	qs.paused = paused.Val() == 1
	qs.groups = groups.Val()

	pipe = c.rdb.Pipeline()
	var since *redis.StringCmd
	if ids := oldest.Val(); len(ids) == 1 {
		since = pipe.HGet(ctx, prefix+"t:"+ids[0], "pending_since")
	}
	sizes := make([]*redis.IntCmd, len(names.Val()))
	firsts := make([]*redis.ZSliceCmd, len(names.Val()))
	for i, g := range names.Val() {
		sizes[i] = pipe.ZCard(ctx, prefix+"g:"+g)
		firsts[i] = pipe.ZRangeWithScores(ctx, prefix+"g:"+g, 0, 0)
	}
	if pipe.Len() == 0 {
		return qs, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return qs, err
	}
	now := time.Now()
	if since != nil {
		if ns, err := since.Int64(); err == nil && ns > 0 {
			qs.latency = max(now.Sub(time.Unix(0, ns)), 0)
		}
	}
	var aggregating int64
	oldestAdded := 0.0
	for i := range sizes {
		aggregating += sizes[i].Val()
		if z := firsts[i].Val(); len(z) == 1 && (oldestAdded == 0 || z[0].Score < oldestAdded) {
			oldestAdded = z[0].Score
		}
	}
	if read := int64(len(sizes)); read > 0 && qs.groups > read {
		aggregating = aggregating * qs.groups / read
	}
	qs.sizes[6] = aggregating
	if oldestAdded > 0 {
		qs.aggregatingAge = max(now.Sub(time.Unix(int64(oldestAdded), 0)), 0)
	}
	return qs, nil
}
