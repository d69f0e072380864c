// Package fleet keeps the live state of the fleet in Redis: when the API last accepted
// a report from each device, and which command each device has open. The API writes it
// with one script call per report; the sweep and the command jobs read it in bulk.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"monitor/task"
)

// Shard is the fleet state of the devices of one ingest queue, under that queue's hash
// tag {<queue>}: all its keys sit in the queue's hash slot, on the queue's node of a
// Redis Cluster, so the report's enqueue and its Accept touch one node (and share its
// pipeline) and every script touches one slot. Scores and times are Unix microseconds,
// exact in a float64 until 2255.
type Shard struct {
	// Index is the shard's number, 0 to the shard count - 1 (task.Ingest.Shard).
	Index int
	// Queue is the ingest queue whose devices this shard holds.
	Queue string
	// LastSeen is a sorted set of sn scored by the acceptance time of its newest report.
	LastSeen string
	// Seeded marks that LastSeen was seeded from the database since this Redis's data
	// began, for this many shards; a Redis that lost its data, or a change of the shard
	// count, loses the mark, and the sweep re-seeds.
	Seeded string
	// Open maps sn to the id of the device's open upload_logs command. OpenVersion is
	// incremented by every change to it, for the Recorders' indexes of open commands.
	Open        string
	OpenVersion string
	// Deliveries counts, per command id, the replies that carried it since the last sync;
	// FirstDelivery holds the first such reply's time.
	Deliveries    string
	FirstDelivery string
	// Tenant maps sn to the tenant the device belongs to: the tenant of its first
	// accepted report, changed only by an operator's move (SetTenant). TenantSeeded marks
	// that it was seeded from devices.tenant, like Seeded.
	Tenant       string
	TenantSeeded string
	// Intake is a hash of intake activity: field the bucket number (Unix time divided by
	// IntakeBucket), value the reports accepted in that bucket. The sweep reads it to
	// tell silence while intake worked from time when intake was down, and prunes it.
	Intake string
	// Offline is the set of devices of this shard whose offline alert fires. The accept
	// script moves a device that reports to Returned, so the sweep never scans the firing
	// alerts to find the devices that came back.
	Offline string
	// Returned is the set of devices whose offline alert fires that reported since.
	Returned string
	// Held is a sorted set, like LastSeen, of the devices past the last sweep's cutoff
	// that raised no alert yet (held back while intake was down, or not yet in the
	// database), which the next sweep looks at again.
	Held string
}

// NewShard returns shard i of n: the keys under the hash tag of ingest queue i of n.
func NewShard(i, n int) Shard {
	queue := task.IngestQueue(i, n)
	p := "monitor:{" + queue + "}:"
	return Shard{
		Index: i, Queue: queue, LastSeen: p + "lastseen", Seeded: p + "lastseen:seeded", Open: p + "cmd:open", OpenVersion: p + "cmd:open:version",
		Deliveries: p + "cmd:deliveries", FirstDelivery: p + "cmd:firstdelivery",
		Tenant: p + "tenant", TenantSeeded: p + "tenant:seeded", Intake: p + "intake",
		Offline: p + "offline", Returned: p + "offline:returned", Held: p + "sweep:held",
	}
}

// IntakeBucket is the width of one bucket of Shard.Intake.
const IntakeBucket = 5 * time.Second

// chunk bounds the arguments of one Redis command in bulk operations.
const chunk = 5000

// Fleet reads and writes the live state on Redis, sharded like the ingest queues: a
// device's state is in the shard of its queue (task.Ingest.Shard).
type Fleet struct {
	rdb    redis.UniversalClient
	ingest task.Ingest
	shards []Shard
}

// New returns a Fleet on rdb over the shards of queues ingest queues (1-256).
func New(rdb redis.UniversalClient, queues int) *Fleet {
	in := task.Ingest{Queues: min(max(queues, 1), task.MaxIngestQueues)}
	f := &Fleet{rdb: rdb, ingest: in}
	for i := range in.Queues {
		f.shards = append(f.shards, NewShard(i, in.Queues))
	}
	return f
}

// Shards returns every shard, in queue order. An operation over the whole fleet runs
// once per shard (EachShard); one device's runs on ShardOf(sn).
func (f *Fleet) Shards() []Shard { return f.shards }

// ShardOf returns the shard holding sn's state.
func (f *Fleet) ShardOf(sn string) Shard { return f.shards[f.ingest.Shard(sn)] }

// owns reports whether sn belongs in sh. An entry in another shard was left there by a
// change of the shard count; it is ignored, and the re-seeding puts the device's state
// into its shard.
func (f *Fleet) owns(sh Shard, sn string) bool { return f.ingest.Shard(sn) == sh.Index }

// EachShard runs fn on every shard in turn and stops at the first error.
func (f *Fleet) EachShard(fn func(Shard) error) error {
	for _, sh := range f.shards {
		if err := fn(sh); err != nil {
			return err
		}
	}
	return nil
}

// byShard splits items over the shards of their sn.
func byShard[T any](f *Fleet, items []T, sn func(T) string) map[int][]T {
	out := map[int][]T{}
	for _, it := range items {
		i := f.ingest.Shard(sn(it))
		out[i] = append(out[i], it)
	}
	return out
}

// acceptScript records one accepted report and returns the device's open command id,
// or nil. It also binds sn to the report's tenant when sn has no tenant yet (with device
// auth off nothing checked the binding before, and this keeps it following the first
// tenant anyway), counts the report in its intake bucket, and moves a device whose
// offline alert fires to the returned set, for the sweep to resolve. KEYS (one shard):
// lastseen, open, deliveries, firstdelivery, tenant, intake, offline, returned. ARGV: sn,
// accepted micros, tenant, intake bucket (computed by the caller, so the script does no
// arithmetic per report).
var acceptScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('HSETNX', KEYS[5], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[6], ARGV[4], 1)
if redis.call('SREM', KEYS[7], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[8], ARGV[1])
end
local id = redis.call('HGET', KEYS[2], ARGV[1])
if id then
  redis.call('HINCRBY', KEYS[3], id, 1)
  redis.call('HSETNX', KEYS[4], id, ARGV[2])
end
return id
`)

// acceptTimeout bounds the round trip of Accept.
const acceptTimeout = 2 * time.Second

// Accept records that the API accepted a report of sn under tenant at time at, in one
// round trip of at most acceptTimeout, and returns the id of the device's open command
// (0 when there is none). A returned command counts as delivered.
func (f *Fleet) Accept(ctx context.Context, sn string, tenant uint32, at time.Time) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, acceptTimeout)
	defer cancel()
	sh := f.ShardOf(sn)
	bucket := strconv.FormatInt(at.UnixMicro()/IntakeBucket.Microseconds(), 10)
	keys := []string{sh.LastSeen, sh.Open, sh.Deliveries, sh.FirstDelivery, sh.Tenant, sh.Intake, sh.Offline, sh.Returned}
	v, err := acceptScript.Run(ctx, f.rdb, keys, sn, at.UnixMicro(), tenant, bucket).Text()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("record last seen: %w", err)
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("open command of %s: bad id %q", sn, v)
	}
	return id, nil
}

// bindScript binds sn to a tenant unless it is bound already, and returns the tenant it
// is bound to and 1 when this call bound it. KEYS: tenant. ARGV: sn, tenant.
var bindScript = redis.NewScript(`
local t = redis.call('HGET', KEYS[1], ARGV[1])
if t then
  return {t, 0}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {ARGV[2], 1}
`)

// Bind binds sn to tenant when sn is not bound yet, atomically, and returns the tenant
// sn is bound to (tenant itself for a new device, else the tenant it belongs to) and
// whether this call bound it, so a caller that then refuses the report can Unbind.
func (f *Fleet) Bind(ctx context.Context, sn string, tenant uint32) (bound uint32, created bool, err error) {
	v, err := bindScript.Run(ctx, f.rdb, []string{f.ShardOf(sn).Tenant}, sn, tenant).Slice()
	if err != nil {
		return 0, false, fmt.Errorf("bind device tenant: %w", err)
	}
	if len(v) != 2 {
		return 0, false, fmt.Errorf("bind device tenant: unexpected reply %v", v)
	}
	t, ok := v[0].(string)
	if !ok {
		return 0, false, fmt.Errorf("bind device tenant: unexpected tenant %v", v[0])
	}
	bound, err = parseTenant(sn, t)
	return bound, v[1] == int64(1), err
}

// unbindScript removes sn's binding only while it is still tenant. KEYS: tenant. ARGV: sn, tenant.
var unbindScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
`)

// Unbind undoes a Bind that created sn's binding to tenant, for a first report refused
// after it was bound (rate limit, queue down): a refused report writes nothing. A
// binding moved or made by anyone else meanwhile is left alone.
func (f *Fleet) Unbind(ctx context.Context, sn string, tenant uint32) error {
	if err := unbindScript.Run(ctx, f.rdb, []string{f.ShardOf(sn).Tenant}, sn, tenant).Err(); err != nil {
		return fmt.Errorf("unbind device tenant: %w", err)
	}
	return nil
}

// Tenant returns the tenant sn is bound to; ok is false for a device not bound.
func (f *Fleet) Tenant(ctx context.Context, sn string) (tenant uint32, ok bool, err error) {
	v, err := f.rdb.HGet(ctx, f.ShardOf(sn).Tenant, sn).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read device tenant: %w", err)
	}
	t, err := parseTenant(sn, v)
	return t, err == nil, err
}

// SetTenant binds sn to tenant, replacing any binding: an operator moved the device.
func (f *Fleet) SetTenant(ctx context.Context, sn string, tenant uint32) error {
	if err := f.rdb.HSet(ctx, f.ShardOf(sn).Tenant, sn, tenant).Err(); err != nil {
		return fmt.Errorf("move device tenant: %w", err)
	}
	return nil
}

// Bound is one device's tenant.
type Bound struct {
	SN     string
	Tenant uint32
}

// SeedTenants binds each device to its tenant from the database, replacing what Redis
// holds (the database is where operators move devices, and the batch writer never
// changes a device's tenant), then marks every shard's bindings seeded.
func (f *Fleet) SeedTenants(ctx context.Context, bs []Bound) error {
	parts := byShard(f, bs, func(b Bound) string { return b.SN })
	return f.EachShard(func(sh Shard) error {
		for part := range slices.Chunk(parts[sh.Index], chunk) {
			args := make([]any, 0, 2*len(part))
			for _, b := range part {
				args = append(args, b.SN, b.Tenant)
			}
			if err := f.rdb.HSet(ctx, sh.Tenant, args...).Err(); err != nil {
				return fmt.Errorf("seed device tenants: %w", err)
			}
		}
		if err := f.rdb.Set(ctx, sh.TenantSeeded, len(f.shards), 0).Err(); err != nil {
			return fmt.Errorf("mark device tenants seeded: %w", err)
		}
		return nil
	})
}

func parseTenant(sn, v string) (uint32, error) {
	t, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("tenant of %s: bad value %q", sn, v)
	}
	return uint32(t), nil
}

// Watch is what the sweep needs to know before it may call anyone offline.
type Watch struct {
	// Seeded reports whether every shard's last-seen set holds the database's devices.
	Seeded bool
	// TenantsSeeded reports whether every shard's sn→tenant bindings hold them.
	TenantsSeeded bool
}

// Watch reads the seeding marks of every shard in one pipeline (one round trip per
// node). A mark counts only if it was made for the current number of shards.
func (f *Fleet) Watch(ctx context.Context) (Watch, error) {
	cmds := make([]*redis.SliceCmd, len(f.shards))
	_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, sh := range f.shards {
			cmds[i] = p.MGet(ctx, sh.Seeded, sh.TenantSeeded)
		}
		return nil
	})
	if err != nil {
		return Watch{}, fmt.Errorf("read intake state: %w", err)
	}
	w := Watch{Seeded: true, TenantsSeeded: true}
	n := strconv.Itoa(len(f.shards))
	for _, c := range cmds {
		vals := c.Val()
		w.Seeded = w.Seeded && vals[0] == n
		w.TenantsSeeded = w.TenantsSeeded && vals[1] == n
	}
	return w, nil
}

func microsOf(v any) time.Time {
	s, ok := v.(string)
	if !ok {
		return time.Time{}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

// Intake returns the reports accepted per IntakeBucket, summed over the shards, from the
// bucket holding from on: bucket number (Unix time / IntakeBucket) to count. It deletes
// the older buckets, so the hashes hold only what the sweep still looks at.
func (f *Fleet) Intake(ctx context.Context, from time.Time) (map[int64]int64, error) {
	first := from.UnixMicro() / IntakeBucket.Microseconds()
	out := map[int64]int64{}
	err := f.EachShard(func(sh Shard) error {
		m, err := f.rdb.HGetAll(ctx, sh.Intake).Result()
		if err != nil {
			return fmt.Errorf("read intake activity: %w", err)
		}
		var old []string
		for k, v := range m {
			b, err1 := strconv.ParseInt(k, 10, 64)
			n, err2 := strconv.ParseInt(v, 10, 64)
			if err1 != nil || err2 != nil || b < first {
				old = append(old, k)
				continue
			}
			out[b] += n
		}
		for part := range slices.Chunk(old, chunk) {
			if err := f.rdb.HDel(ctx, sh.Intake, part...).Err(); err != nil {
				return fmt.Errorf("prune intake activity: %w", err)
			}
		}
		return nil
	})
	return out, err
}

// Seen is one device's last-seen time.
type Seen struct {
	SN string
	At time.Time
}

// Seed merges last-seen times from the database into the shards' sets (a newer time
// already there wins), then marks every shard seeded.
func (f *Fleet) Seed(ctx context.Context, seen []Seen) error {
	parts := byShard(f, seen, func(s Seen) string { return s.SN })
	return f.EachShard(func(sh Shard) error {
		for part := range slices.Chunk(parts[sh.Index], chunk) {
			zs := make([]redis.Z, len(part))
			for i, s := range part {
				zs[i] = redis.Z{Score: float64(s.At.UnixMicro()), Member: s.SN}
			}
			if err := f.rdb.ZAddGT(ctx, sh.LastSeen, zs...).Err(); err != nil {
				return fmt.Errorf("seed last seen: %w", err)
			}
		}
		if err := f.rdb.Set(ctx, sh.Seeded, len(f.shards), 0).Err(); err != nil {
			return fmt.Errorf("mark last seen seeded: %w", err)
		}
		return nil
	})
}

// SilentSince returns the devices whose newest report was accepted at or before cutoff,
// from every shard.
func (f *Fleet) SilentSince(ctx context.Context, cutoff time.Time) ([]Seen, error) {
	var out []Seen
	err := f.EachShard(func(sh Shard) error {
		zs, err := f.rdb.ZRangeByScoreWithScores(ctx, sh.LastSeen, &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(cutoff.UnixMicro(), 10),
		}).Result()
		if err != nil {
			return fmt.Errorf("read silent devices: %w", err)
		}
		out = append(out, f.seenOf(sh, zs)...)
		return nil
	})
	return out, err
}

// seenOf returns the members of a last-seen range of sh with their times, leaving out
// entries that belong in another shard.
func (f *Fleet) seenOf(sh Shard, zs []redis.Z) []Seen {
	out := make([]Seen, 0, len(zs))
	for _, z := range zs {
		if sn, ok := z.Member.(string); ok && f.owns(sh, sn) {
			out = append(out, Seen{SN: sn, At: time.UnixMicro(int64(z.Score)).UTC()})
		}
	}
	return out
}

// SilentBetween returns the devices whose newest report was accepted after from and at
// or before to, from every shard: those that crossed a silence threshold between two
// sweeps.
func (f *Fleet) SilentBetween(ctx context.Context, from, to time.Time) ([]Seen, error) {
	var out []Seen
	err := f.EachShard(func(sh Shard) error {
		zs, err := f.rdb.ZRangeByScoreWithScores(ctx, sh.LastSeen, &redis.ZRangeBy{
			Min: "(" + strconv.FormatInt(from.UnixMicro(), 10), Max: strconv.FormatInt(to.UnixMicro(), 10),
		}).Result()
		if err != nil {
			return fmt.Errorf("read newly silent devices: %w", err)
		}
		out = append(out, f.seenOf(sh, zs)...)
		return nil
	})
	return out, err
}

// LastSeen returns the last-seen time of each sn, zero for a device never seen.
func (f *Fleet) LastSeen(ctx context.Context, sns []string) ([]time.Time, error) {
	out := make([]time.Time, len(sns))
	idx := make([]int, len(sns))
	for i := range idx {
		idx[i] = i
	}
	parts := byShard(f, idx, func(i int) string { return sns[i] })
	err := f.EachShard(func(sh Shard) error {
		for part := range slices.Chunk(parts[sh.Index], chunk) {
			members := make([]string, len(part))
			for j, i := range part {
				members[j] = sns[i]
			}
			scores, err := f.rdb.ZMScore(ctx, sh.LastSeen, members...).Result()
			if err != nil {
				return fmt.Errorf("read last seen: %w", err)
			}
			for j, s := range scores {
				if s != 0 {
					out[part[j]] = time.UnixMicro(int64(s)).UTC()
				}
			}
		}
		return nil
	})
	return out, err
}

// SetOpen records open commands: sn to command id.
func (f *Fleet) SetOpen(ctx context.Context, open map[string]uint64) error {
	return f.eachPair(open, func(sh Shard, args []any) error {
		_, err := f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, sh.Open, args...)
			p.Incr(ctx, sh.OpenVersion)
			return nil
		})
		if err != nil {
			return fmt.Errorf("record open commands: %w", err)
		}
		return nil
	})
}

// eachPair calls fn with the sn, id pairs of m, per shard, at most chunk pairs at a time.
func (f *Fleet) eachPair(m map[string]uint64, fn func(sh Shard, args []any) error) error {
	args := make([][]any, len(f.shards))
	for sn, id := range m {
		i := f.ingest.Shard(sn)
		args[i] = append(args[i], sn, strconv.FormatUint(id, 10))
		if len(args[i]) >= 2*chunk {
			if err := fn(f.shards[i], args[i]); err != nil {
				return err
			}
			args[i] = args[i][:0]
		}
	}
	for i, a := range args {
		if len(a) > 0 {
			if err := fn(f.shards[i], a); err != nil {
				return err
			}
		}
	}
	return nil
}

// clearScript deletes sn→id pairs from the open hash, each only while it still names
// that id, so a newer command of the device is never dropped, and counts a change in
// the open version. KEYS: open, open version. ARGV: sn1, id1, sn2, id2…
var clearScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i+1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
if n > 0 then
  redis.call('INCR', KEYS[2])
end
return n
`)

// ClearOpen forgets closed commands: sn to the id that is no longer open.
func (f *Fleet) ClearOpen(ctx context.Context, closed map[string]uint64) error {
	return f.eachPair(closed, func(sh Shard, args []any) error {
		if err := clearScript.Run(ctx, f.rdb, []string{sh.Open, sh.OpenVersion}, args...).Err(); err != nil {
			return fmt.Errorf("forget closed commands: %w", err)
		}
		return nil
	})
}

// Open returns every open command in Redis: sn to command id.
func (f *Fleet) Open(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := f.EachShard(func(sh Shard) error {
		m, err := f.rdb.HGetAll(ctx, sh.Open).Result()
		if err != nil {
			return fmt.Errorf("read open commands: %w", err)
		}
		for sn, v := range m {
			id, err := strconv.ParseUint(v, 10, 64)
			if err != nil || !f.owns(sh, sn) {
				continue // not ours to interpret, or a stray: the sync overwrites or clears it
			}
			out[sn] = id
		}
		return nil
	})
	return out, err
}

// Delivery is what the replies to reports did with one command since the last sync.
type Delivery struct {
	Count int64
	First time.Time
}

// takeScript returns both delivery hashes of one shard as flat arrays and deletes them,
// atomically, so a delivery recorded meanwhile is never lost between the read and the delete.
var takeScript = redis.NewScript(`
local c = redis.call('HGETALL', KEYS[1])
local f = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
return {c, f}
`)

// TakeDeliveries removes and returns the deliveries recorded since the last call, from
// every shard. Give them back with RestoreDeliveries when they cannot be stored. When a
// shard fails, those taken from the shards before it are given back at once, and
// nothing is returned.
func (f *Fleet) TakeDeliveries(ctx context.Context) (map[uint64]Delivery, error) {
	out := map[uint64]Delivery{}
	err := f.EachShard(func(sh Shard) error {
		v, err := takeScript.Run(ctx, f.rdb, []string{sh.Deliveries, sh.FirstDelivery}).Slice()
		if err != nil {
			return fmt.Errorf("take deliveries: %w", err)
		}
		if len(v) == 2 {
			mergeDeliveries(out, v[0], v[1])
		}
		return nil
	})
	if err != nil {
		if len(out) > 0 {
			err = errors.Join(err, f.RestoreDeliveries(ctx, out))
		}
		return nil, err
	}
	return out, nil
}

// mergeDeliveries adds one shard's flat delivery counts and first times to out. A
// command delivered in two shards (its device's shard changed) sums its counts and keeps
// the earlier first time.
func mergeDeliveries(out map[uint64]Delivery, counts, firsts any) {
	pairs := func(x any, fn func(id uint64, v string)) {
		flat, _ := x.([]any)
		for i := 0; i+1 < len(flat); i += 2 {
			k, _ := flat[i].(string)
			val, _ := flat[i+1].(string)
			id, err := strconv.ParseUint(k, 10, 64)
			if err == nil {
				fn(id, val)
			}
		}
	}
	pairs(counts, func(id uint64, val string) {
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return // a count that is not a number carries no delivery
		}
		d := out[id]
		d.Count += n
		out[id] = d
	})
	pairs(firsts, func(id uint64, val string) {
		d := out[id]
		if t := microsOf(val); !t.IsZero() && (d.First.IsZero() || t.Before(d.First)) {
			d.First = t
		}
		out[id] = d
	})
}

// RestoreDeliveries gives back deliveries taken by TakeDeliveries, merging them with
// any recorded since. A command's deliveries go back to the first shard, as the sync
// reads them all alike.
func (f *Fleet) RestoreDeliveries(ctx context.Context, ds map[uint64]Delivery) error {
	sh := f.shards[0]
	_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, d := range ds {
			k := strconv.FormatUint(id, 10)
			p.HIncrBy(ctx, sh.Deliveries, k, d.Count)
			if !d.First.IsZero() {
				p.HSetNX(ctx, sh.FirstDelivery, k, d.First.UnixMicro())
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore deliveries: %w", err)
	}
	return nil
}

// Redis returns the client the fleet state lives on, for other live state of the same
// Redis (the alert notices waiting for their group).
func (f *Fleet) Redis() redis.UniversalClient { return f.rdb }
