package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RecorderOptions are the settings of a Recorder.
type RecorderOptions struct {
	// FlushEvery is how often the buffered writes go to Redis and the index of open
	// commands is refreshed (default 200ms). It is also how long a newly opened command
	// may wait for the device's next report rather than this one.
	FlushEvery time.Duration
	// Stale is how old a shard's index of open commands may grow (no successful flush
	// since) before reports of that shard go the direct way again (default 5×FlushEvery).
	Stale time.Duration
	// MaxPending bounds the devices waiting for a flush over all shards (default
	// 200,000); beyond it reports go the direct way, so a Redis that refuses flushes
	// cannot make the buffer grow without bound.
	MaxPending int
	// Logger receives failed flushes; nil discards them.
	Logger *slog.Logger
}

func (o RecorderOptions) withDefaults() (RecorderOptions, error) {
	o.FlushEvery = cmp.Or(o.FlushEvery, 200*time.Millisecond)
	o.Stale = cmp.Or(o.Stale, 5*o.FlushEvery)
	o.MaxPending = cmp.Or(o.MaxPending, 200_000)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FlushEvery <= 0 || o.Stale < o.FlushEvery || o.MaxPending < 1 {
		return o, fmt.Errorf("fleet recorder: flush every %v, stale after %v and %d pending must be positive, stale ≥ flush", o.FlushEvery, o.Stale, o.MaxPending)
	}
	return o, nil
}

// Recorder records accepted reports like Fleet.Accept, but without a Redis round trip
// for nearly all of them: it keeps, per shard, an index of the devices with an open
// command (refreshed on every flush when the shard's open-command version changed),
// and the report of a device without one is buffered and written with the other
// reports of its shard by one script call every FlushEvery. The report of a device in
// the index, of a shard whose index is stale, or arriving while the buffer is full
// goes the direct way (Fleet.Accept), so a device with an open command still gets it,
// and the delivery is counted, in the reply to the very report that finds it.
//
// What a crash of the process loses is the buffer, at most FlushEvery of last-seen
// times, tenant bindings, intake counts and returns from offline; the reports
// themselves are on the queue already. The workers write each report's time to
// devices.last_seen, and the device's next report records it again.
type Recorder struct {
	fleet  *Fleet
	opt    RecorderOptions
	shards []*recorderShard
	// pending counts the devices buffered over all shards.
	pending atomic.Int64

	started atomic.Bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// recorderShard is one shard's buffer and index.
type recorderShard struct {
	sh Shard

	mu      sync.Mutex
	seen    map[string]pendingReport // sn to its newest buffered report
	intake  map[int64]int64          // intake bucket to reports buffered
	open    map[string]struct{}      // devices with an open command at the last flush
	version string                   // the open-command version the index is of
	fresh   time.Time                // when the index was last read; zero before the first flush
	closed  bool
}

// pendingReport is what a buffered device's reports leave for the flush: the newest
// acceptance time and the tenant of the first (the binding is first-come, like HSETNX).
type pendingReport struct {
	micros int64
	tenant uint32
}

// NewRecorder returns a Recorder over f. Start runs its flushes; Close flushes the rest.
func NewRecorder(f *Fleet, o RecorderOptions) (*Recorder, error) {
	opt, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Recorder{fleet: f, opt: opt, stop: make(chan struct{}), done: make(chan struct{})}
	for _, sh := range f.shards {
		r.shards = append(r.shards, &recorderShard{sh: sh, seen: map[string]pendingReport{}, intake: map[int64]int64{}})
	}
	return r, nil
}

// Accept records that the API accepted a report of sn under tenant at time at and
// returns the id of the device's open command (0 when there is none), like
// Fleet.Accept. A device without an open command is answered at once and its report
// recorded by the next flush.
func (r *Recorder) Accept(ctx context.Context, sn string, tenant uint32, at time.Time) (uint64, error) {
	s := r.shards[r.fleet.ingest.Shard(sn)]
	s.mu.Lock()
	_, open := s.open[sn]
	direct := open || s.closed || s.fresh.IsZero() || time.Since(s.fresh) > r.opt.Stale
	if !direct {
		micros := at.UnixMicro()
		p, ok := s.seen[sn]
		switch {
		case !ok && r.pending.Load() >= int64(r.opt.MaxPending):
			direct = true
		case !ok:
			r.pending.Add(1)
			s.seen[sn] = pendingReport{micros: micros, tenant: tenant}
		case micros > p.micros:
			p.micros = micros
			s.seen[sn] = p
		}
		if !direct {
			s.intake[micros/IntakeBucket.Microseconds()]++
		}
	}
	s.mu.Unlock()
	if direct {
		return r.fleet.Accept(ctx, sn, tenant, at)
	}
	return 0, nil
}

// LastSeen returns the last-seen time of each sn like Fleet.LastSeen, with the times
// of the reports still in the buffer, so this process never reads back an older time
// than it accepted (a device that just reported is known).
func (r *Recorder) LastSeen(ctx context.Context, sns []string) ([]time.Time, error) {
	out, err := r.fleet.LastSeen(ctx, sns)
	if err != nil {
		return nil, err
	}
	for i, sn := range sns {
		s := r.shards[r.fleet.ingest.Shard(sn)]
		s.mu.Lock()
		p, ok := s.seen[sn]
		s.mu.Unlock()
		if at := time.UnixMicro(p.micros).UTC(); ok && at.After(out[i]) {
			out[i] = at
		}
	}
	return out, nil
}

// Start runs the flushes every FlushEvery, the first at once, until Close.
func (r *Recorder) Start() {
	r.started.Store(true)
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.opt.FlushEvery)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), r.opt.Stale)
			if err := r.Flush(ctx); err != nil {
				r.opt.Logger.Warn("fleet state not flushed; retrying", "err", err)
			}
			cancel()
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the flushes, sends reports after it the direct way, and flushes what is
// buffered within ctx. Call it once the HTTP server no longer takes reports.
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() { close(r.stop) })
	if r.started.Load() {
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("fleet recorder: stop flushing: %w", ctx.Err())
		}
	}
	for _, s := range r.shards {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
	}
	return r.Flush(ctx)
}

// Flush writes every shard's buffered reports and refreshes the shards' indexes of
// open commands, the shards concurrently (their calls share round trips through a
// pipelined client). A shard that fails keeps its reports for the next flush.
func (r *Recorder) Flush(ctx context.Context) error {
	errs := make([]error, len(r.shards))
	var wg sync.WaitGroup
	for i, s := range r.shards {
		wg.Go(func() { errs[i] = r.flushShard(ctx, s) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// flushBatch bounds the devices of one flush script call.
const flushBatch = 1000

// flushScript records buffered reports of one shard, like acceptScript does for one,
// and returns the shard's open-command version (the version key and the open hash's
// length), with the open hash's devices when it is not ARGV[1]. KEYS: lastseen, tenant,
// intake, offline, returned, open, open version. ARGV: known version, device count n,
// then n triples sn, accepted micros, tenant, then bucket, count pairs.
var flushScript = redis.NewScript(`
local n = tonumber(ARGV[2])
if n > 0 then
  -- One variadic call per key, not one call per device: in a burst a flush carries up to
  -- flushBatch devices, and Redis pays per call.
  local sns, scored = {}, {}
  for k = 0, n - 1 do
    local i = 3 + 3 * k
    sns[k + 1] = ARGV[i]
    scored[2 * k + 1] = ARGV[i + 1]
    scored[2 * k + 2] = ARGV[i]
  end
  redis.call('ZADD', KEYS[1], 'GT', unpack(scored))
  -- HSETNX for each device: bind only those without a tenant.
  local bound = redis.call('HMGET', KEYS[2], unpack(sns))
  local bind = {}
  for k = 1, n do
    if not bound[k] then
      bind[#bind + 1] = sns[k]
      bind[#bind + 1] = ARGV[3 + 3 * (k - 1) + 2]
    end
  end
  if #bind > 0 then
    redis.call('HSET', KEYS[2], unpack(bind))
  end
  -- A device whose offline alert fires moves to the returned set.
  local offline = redis.call('SMISMEMBER', KEYS[4], unpack(sns))
  local back = {}
  for k = 1, n do
    if offline[k] == 1 then
      back[#back + 1] = sns[k]
    end
  end
  if #back > 0 then
    redis.call('SREM', KEYS[4], unpack(back))
    redis.call('SADD', KEYS[5], unpack(back))
  end
end
local i = 3 + 3 * n
while i < #ARGV do
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i+1])
  i = i + 2
end
local v = (redis.call('GET', KEYS[7]) or '0') .. ':' .. redis.call('HLEN', KEYS[6])
if v == ARGV[1] then
  return {v}
end
return {v, redis.call('HKEYS', KEYS[6])}
`)

func (r *Recorder) flushShard(ctx context.Context, s *recorderShard) error {
	s.mu.Lock()
	seen, intake, version := s.seen, s.intake, s.version
	s.seen, s.intake = map[string]pendingReport{}, map[int64]int64{}
	s.mu.Unlock()

	sns := make([]string, 0, len(seen))
	for sn := range seen {
		sns = append(sns, sn)
	}
	keys := []string{s.sh.LastSeen, s.sh.Tenant, s.sh.Intake, s.sh.Offline, s.sh.Returned, s.sh.Open, s.sh.OpenVersion}
	var reply []any
	written := 0
	var err error
	// The last call carries the intake counts and runs even with nothing to write: it
	// reads the version.
	for last := false; !last && err == nil; {
		part := sns[written:min(len(sns), written+flushBatch)]
		last = written+len(part) == len(sns)
		args := make([]any, 0, 2+3*len(part)+2*len(intake))
		args = append(args, version, len(part))
		for _, sn := range part {
			args = append(args, sn, seen[sn].micros, seen[sn].tenant)
		}
		if last {
			for b, c := range intake {
				args = append(args, b, c)
			}
		}
		if reply, err = flushScript.Run(ctx, r.fleet.rdb, keys, args...).Slice(); err == nil {
			written += len(part)
		}
	}
	r.pending.Add(-int64(written))
	if err != nil {
		// What was not written goes back, merged with what arrived meanwhile: the
		// tenant of the older report (the first), the newer time.
		s.mu.Lock()
		for _, sn := range sns[written:] {
			p := seen[sn]
			if q, ok := s.seen[sn]; ok {
				r.pending.Add(-1) // one entry for both
				p.micros = max(p.micros, q.micros)
			}
			s.seen[sn] = p
		}
		for b, c := range intake {
			s.intake[b] += c
		}
		s.mu.Unlock()
		return fmt.Errorf("flush fleet state of %s: %w", s.sh.Queue, err)
	}
	if len(reply) == 0 {
		return fmt.Errorf("flush fleet state of %s: empty reply", s.sh.Queue)
	}
	v, _ := reply[0].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(reply) == 2 {
		members, _ := reply[1].([]any)
		open := make(map[string]struct{}, len(members))
		for _, m := range members {
			if sn, ok := m.(string); ok {
				open[sn] = struct{}{}
			}
		}
		s.open, s.version = open, v
	}
	s.fresh = time.Now()
	return nil
}
