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
)

// Redis keys. Scores and times are Unix microseconds, exact in a float64 until 2255.
const (
	// KeyLastSeen is a sorted set of sn scored by the acceptance time of its newest report.
	KeyLastSeen = "monitor:lastseen"
	// KeySeeded marks that KeyLastSeen was seeded from the database since this Redis's
	// data began; a Redis that lost its data loses the mark too, and the sweep re-seeds.
	KeySeeded = "monitor:lastseen:seeded"
	// KeyOpen maps sn to the id of the device's open upload_logs command.
	KeyOpen = "monitor:cmd:open"
	// KeyDeliveries counts, per command id, the replies that carried it since the last sync;
	// KeyFirstDelivery holds the first such reply's time.
	KeyDeliveries    = "monitor:cmd:deliveries"
	KeyFirstDelivery = "monitor:cmd:firstdelivery"
	// KeyTenant maps sn to the tenant the device belongs to: the tenant of its first
	// accepted report, changed only by an operator's move (SetTenant). KeyTenantSeeded marks
	// that it was seeded from devices.tenant since this Redis's data began.
	KeyTenant       = "monitor:tenant"
	KeyTenantSeeded = "monitor:tenant:seeded"
	// KeyIntake is a hash of intake activity: field the bucket number (Unix time divided
	// by IntakeBucket), value the reports accepted in that bucket. The sweep reads it to
	// tell silence while intake worked from time when intake was down, and prunes it.
	KeyIntake = "monitor:intake"
)

// IntakeBucket is the width of one bucket of KeyIntake.
const IntakeBucket = 5 * time.Second

// chunk bounds the arguments of one Redis command in bulk operations.
const chunk = 5000

// Fleet reads and writes the live state on one Redis.
type Fleet struct {
	rdb redis.UniversalClient
}

// New returns a Fleet on rdb.
func New(rdb redis.UniversalClient) *Fleet {
	return &Fleet{rdb: rdb}
}

// acceptScript records one accepted report and returns the device's open command id,
// or nil. It also binds sn to the report's tenant when sn has no tenant yet (with device
// auth off nothing checked the binding before, and this keeps it following the first
// tenant anyway), counts the report in its intake bucket, and moves a device whose
// offline alert fires to the returned set, for the sweep to resolve. KEYS: lastseen,
// open, deliveries, firstdelivery, tenant, intake, offline, returned. ARGV: sn, accepted
// micros, tenant, intake bucket (computed by the caller, so the script does no
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

var acceptKeys = []string{KeyLastSeen, KeyOpen, KeyDeliveries, KeyFirstDelivery, KeyTenant, KeyIntake, KeyOffline, KeyReturned}

// Accept records that the API accepted a report of sn under tenant at time at, in one
// round trip, and returns the id of the device's open command (0 when there is none). A
// returned command counts as delivered.
func (f *Fleet) Accept(ctx context.Context, sn string, tenant uint32, at time.Time) (uint64, error) {
	bucket := strconv.FormatInt(at.UnixMicro()/IntakeBucket.Microseconds(), 10)
	v, err := acceptScript.Run(ctx, f.rdb, acceptKeys, sn, at.UnixMicro(), tenant, bucket).Text()
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
	v, err := bindScript.Run(ctx, f.rdb, []string{KeyTenant}, sn, tenant).Slice()
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
	if err := unbindScript.Run(ctx, f.rdb, []string{KeyTenant}, sn, tenant).Err(); err != nil {
		return fmt.Errorf("unbind device tenant: %w", err)
	}
	return nil
}

// Tenant returns the tenant sn is bound to; ok is false for a device not bound.
func (f *Fleet) Tenant(ctx context.Context, sn string) (tenant uint32, ok bool, err error) {
	v, err := f.rdb.HGet(ctx, KeyTenant, sn).Result()
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
	if err := f.rdb.HSet(ctx, KeyTenant, sn, tenant).Err(); err != nil {
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
// changes a device's tenant), then marks the bindings seeded.
func (f *Fleet) SeedTenants(ctx context.Context, bs []Bound, now time.Time) error {
	for part := range slices.Chunk(bs, chunk) {
		args := make([]any, 0, 2*len(part))
		for _, b := range part {
			args = append(args, b.SN, b.Tenant)
		}
		if err := f.rdb.HSet(ctx, KeyTenant, args...).Err(); err != nil {
			return fmt.Errorf("seed device tenants: %w", err)
		}
	}
	if err := f.rdb.Set(ctx, KeyTenantSeeded, now.UnixMicro(), 0).Err(); err != nil {
		return fmt.Errorf("mark device tenants seeded: %w", err)
	}
	return nil
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
	// Seeded reports whether the last-seen set holds the database's devices.
	Seeded bool
	// TenantsSeeded reports whether the sn→tenant bindings hold the database's devices.
	TenantsSeeded bool
}

// Watch reads the intake state in one round trip.
func (f *Fleet) Watch(ctx context.Context) (Watch, error) {
	vals, err := f.rdb.MGet(ctx, KeySeeded, KeyTenantSeeded).Result()
	if err != nil {
		return Watch{}, fmt.Errorf("read intake state: %w", err)
	}
	return Watch{Seeded: vals[0] != nil, TenantsSeeded: vals[1] != nil}, nil
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

// Intake returns the reports accepted per IntakeBucket from the bucket holding from on:
// bucket number (Unix time / IntakeBucket) to count. It deletes the older buckets, so
// the hash holds only what the sweep still looks at.
func (f *Fleet) Intake(ctx context.Context, from time.Time) (map[int64]int64, error) {
	m, err := f.rdb.HGetAll(ctx, KeyIntake).Result()
	if err != nil {
		return nil, fmt.Errorf("read intake activity: %w", err)
	}
	first := from.UnixMicro() / IntakeBucket.Microseconds()
	out := make(map[int64]int64, len(m))
	var old []string
	for k, v := range m {
		b, err1 := strconv.ParseInt(k, 10, 64)
		n, err2 := strconv.ParseInt(v, 10, 64)
		if err1 != nil || err2 != nil || b < first {
			old = append(old, k)
			continue
		}
		out[b] = n
	}
	for part := range slices.Chunk(old, chunk) {
		if err := f.rdb.HDel(ctx, KeyIntake, part...).Err(); err != nil {
			return nil, fmt.Errorf("prune intake activity: %w", err)
		}
	}
	return out, nil
}

// Seen is one device's last-seen time.
type Seen struct {
	SN string
	At time.Time
}

// Seed merges last-seen times from the database into the set (a newer time already
// there wins), then marks the set seeded and restarts the watch at now.
func (f *Fleet) Seed(ctx context.Context, seen []Seen, now time.Time) error {
	for part := range slices.Chunk(seen, chunk) {
		zs := make([]redis.Z, len(part))
		for i, s := range part {
			zs[i] = redis.Z{Score: float64(s.At.UnixMicro()), Member: s.SN}
		}
		if err := f.rdb.ZAddGT(ctx, KeyLastSeen, zs...).Err(); err != nil {
			return fmt.Errorf("seed last seen: %w", err)
		}
	}
	_, err := f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, KeySeeded, now.UnixMicro(), 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark last seen seeded: %w", err)
	}
	return nil
}

// SilentSince returns the devices whose newest report was accepted at or before cutoff.
func (f *Fleet) SilentSince(ctx context.Context, cutoff time.Time) ([]Seen, error) {
	zs, err := f.rdb.ZRangeByScoreWithScores(ctx, KeyLastSeen, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(cutoff.UnixMicro(), 10),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read silent devices: %w", err)
	}
	return seenOf(zs), nil
}

// seenOf returns the members of a last-seen range with their times.
func seenOf(zs []redis.Z) []Seen {
	out := make([]Seen, 0, len(zs))
	for _, z := range zs {
		sn, ok := z.Member.(string)
		if ok {
			out = append(out, Seen{SN: sn, At: time.UnixMicro(int64(z.Score)).UTC()})
		}
	}
	return out
}

// SilentBetween returns the devices whose newest report was accepted after from and at
// or before to: those that crossed a silence threshold between two sweeps.
func (f *Fleet) SilentBetween(ctx context.Context, from, to time.Time) ([]Seen, error) {
	zs, err := f.rdb.ZRangeByScoreWithScores(ctx, KeyLastSeen, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(from.UnixMicro(), 10), Max: strconv.FormatInt(to.UnixMicro(), 10),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read newly silent devices: %w", err)
	}
	return seenOf(zs), nil
}

// LastSeen returns the last-seen time of each sn, zero for a device never seen.
func (f *Fleet) LastSeen(ctx context.Context, sns []string) ([]time.Time, error) {
	out := make([]time.Time, 0, len(sns))
	for part := range slices.Chunk(sns, chunk) {
		scores, err := f.rdb.ZMScore(ctx, KeyLastSeen, part...).Result()
		if err != nil {
			return nil, fmt.Errorf("read last seen: %w", err)
		}
		for _, s := range scores {
			if s == 0 {
				out = append(out, time.Time{})
				continue
			}
			out = append(out, time.UnixMicro(int64(s)).UTC())
		}
	}
	return out, nil
}

// SetOpen records open commands: sn to command id.
func (f *Fleet) SetOpen(ctx context.Context, open map[string]uint64) error {
	args := make([]any, 0, 2*min(len(open), chunk))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		err := f.rdb.HSet(ctx, KeyOpen, args...).Err()
		args = args[:0]
		if err != nil {
			return fmt.Errorf("record open commands: %w", err)
		}
		return nil
	}
	for sn, id := range open {
		args = append(args, sn, strconv.FormatUint(id, 10))
		if len(args) >= 2*chunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// clearScript deletes sn→id pairs from the open hash, each only while it still names
// that id, so a newer command of the device is never dropped. ARGV: sn1, id1, sn2, id2…
var clearScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i+1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
`)

// ClearOpen forgets closed commands: sn to the id that is no longer open.
func (f *Fleet) ClearOpen(ctx context.Context, closed map[string]uint64) error {
	args := make([]any, 0, 2*min(len(closed), chunk))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		err := clearScript.Run(ctx, f.rdb, []string{KeyOpen}, args...).Err()
		args = args[:0]
		if err != nil {
			return fmt.Errorf("forget closed commands: %w", err)
		}
		return nil
	}
	for sn, id := range closed {
		args = append(args, sn, strconv.FormatUint(id, 10))
		if len(args) >= 2*chunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Open returns every open command in Redis: sn to command id.
func (f *Fleet) Open(ctx context.Context) (map[string]uint64, error) {
	m, err := f.rdb.HGetAll(ctx, KeyOpen).Result()
	if err != nil {
		return nil, fmt.Errorf("read open commands: %w", err)
	}
	out := make(map[string]uint64, len(m))
	for sn, v := range m {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			continue // not ours to interpret; the sync overwrites or clears it
		}
		out[sn] = id
	}
	return out, nil
}

// Delivery is what the replies to reports did with one command since the last sync.
type Delivery struct {
	Count int64
	First time.Time
}

// takeScript returns both delivery hashes as flat arrays and deletes them, atomically,
// so a delivery recorded meanwhile is never lost between the read and the delete.
var takeScript = redis.NewScript(`
local c = redis.call('HGETALL', KEYS[1])
local f = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
return {c, f}
`)

// TakeDeliveries removes and returns the deliveries recorded since the last call.
// Give them back with RestoreDeliveries when they cannot be stored.
func (f *Fleet) TakeDeliveries(ctx context.Context) (map[uint64]Delivery, error) {
	v, err := takeScript.Run(ctx, f.rdb, []string{KeyDeliveries, KeyFirstDelivery}).Slice()
	if err != nil {
		return nil, fmt.Errorf("take deliveries: %w", err)
	}
	out := map[uint64]Delivery{}
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
	if len(v) == 2 {
		pairs(v[0], func(id uint64, val string) {
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return // a count that is not a number carries no delivery
			}
			d := out[id]
			d.Count = n
			out[id] = d
		})
		pairs(v[1], func(id uint64, val string) {
			d := out[id]
			d.First = microsOf(val)
			out[id] = d
		})
	}
	return out, nil
}

// RestoreDeliveries gives back deliveries taken by TakeDeliveries, merging them with
// any recorded since.
func (f *Fleet) RestoreDeliveries(ctx context.Context, ds map[uint64]Delivery) error {
	_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, d := range ds {
			k := strconv.FormatUint(id, 10)
			p.HIncrBy(ctx, KeyDeliveries, k, d.Count)
			if !d.First.IsZero() {
				p.HSetNX(ctx, KeyFirstDelivery, k, d.First.UnixMicro())
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
