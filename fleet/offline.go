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

// KeySweepCutoff is the offline cutoff of the last sweep (Unix micros): devices silent
// since then or earlier were examined. Without it the next sweep reads every silent
// device and every firing alert once, and rebuilds each shard's Offline, Returned and
// Held. Those sets are per shard (Shard.Offline and so on), in the slot of the last-seen
// set the accept and mark scripts touch with them.
const KeySweepCutoff = "monitor:sweep:cutoff"

// SweepState is what the last offline sweep left for the next.
type SweepState struct {
	// Cutoff is the last sweep's cutoff; zero when there is none (the first sweep, or
	// Redis lost its data).
	Cutoff time.Time
	// Held are the devices the last sweep could not decide, with their last-seen times.
	Held []Seen
}

// SweepState reads the last sweep's state.
func (f *Fleet) SweepState(ctx context.Context) (SweepState, error) {
	var st SweepState
	v, err := f.rdb.Get(ctx, KeySweepCutoff).Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return st, nil
	case err != nil:
		return st, fmt.Errorf("read sweep cutoff: %w", err)
	}
	st.Cutoff = time.UnixMicro(v).UTC()
	err = f.EachShard(func(sh Shard) error {
		zs, err := f.rdb.ZRangeWithScores(ctx, sh.Held, 0, -1).Result()
		if err != nil {
			return fmt.Errorf("read held devices: %w", err)
		}
		st.Held = append(st.Held, f.seenOf(sh, zs)...)
		return nil
	})
	return st, err
}

// SaveSweepState records a sweep's cutoff and the devices it held: each shard's held
// set in one transaction, then the cutoff, so a sweep that stops halfway leaves the old
// cutoff and the next one looks at the same devices again.
func (f *Fleet) SaveSweepState(ctx context.Context, st SweepState) error {
	held := byShard(f, st.Held, func(s Seen) string { return s.SN })
	err := f.EachShard(func(sh Shard) error {
		_, err := f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, sh.Held)
			for part := range slices.Chunk(held[sh.Index], chunk) {
				zs := make([]redis.Z, len(part))
				for i, s := range part {
					zs[i] = redis.Z{Score: float64(s.At.UnixMicro()), Member: s.SN}
				}
				p.ZAdd(ctx, sh.Held, zs...)
			}
			return nil
		})
		return err
	})
	if err == nil {
		err = f.rdb.Set(ctx, KeySweepCutoff, st.Cutoff.UnixMicro(), 0).Err()
	}
	if err != nil {
		return fmt.Errorf("record sweep state: %w", err)
	}
	return nil
}

// CountSilent counts the devices whose newest report was accepted at or before cutoff,
// in O(log n) per shard.
func (f *Fleet) CountSilent(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	err := f.EachShard(func(sh Shard) error {
		n, err := f.rdb.ZCount(ctx, sh.LastSeen, "-inf", strconv.FormatInt(cutoff.UnixMicro(), 10)).Result()
		if err != nil {
			return fmt.Errorf("count silent devices: %w", err)
		}
		total += n
		return nil
	})
	return total, err
}

// SetOffline replaces the offline sets with sns (and the returned sets with those that
// reported after cutoff): the sweep rebuilds them from the firing alerts after Redis
// lost them.
func (f *Fleet) SetOffline(ctx context.Context, sns []string, cutoff time.Time) error {
	err := f.EachShard(func(sh Shard) error {
		if err := f.rdb.Del(ctx, sh.Offline, sh.Returned).Err(); err != nil {
			return fmt.Errorf("rebuild offline devices: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return f.MarkOffline(ctx, sns, cutoff)
}

// markOfflineScript adds each device to the offline set, or to the returned set when it reported
// after cutoff: atomic with the accept script, so a report between the sweep's read and
// this call is never missed. KEYS: lastseen, offline, returned. ARGV: cutoff, sn…
var markOfflineScript = redis.NewScript(`
local cutoff = tonumber(ARGV[1])
for i = 2, #ARGV do
  local t = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if t and tonumber(t) > cutoff then
    redis.call('SADD', KEYS[3], ARGV[i])
  else
    redis.call('SADD', KEYS[2], ARGV[i])
  end
end
return 0
`)

// MarkOffline records that the offline alerts of sns fire: a device's next report
// moves it to its shard's returned set. One that reported after cutoff, since the sweep
// read its silence, goes to the returned set at once.
func (f *Fleet) MarkOffline(ctx context.Context, sns []string, cutoff time.Time) error {
	for i, sns := range byShard(f, sns, func(sn string) string { return sn }) {
		sh := f.shards[i]
		for part := range slices.Chunk(sns, chunk) {
			args := append([]any{cutoff.UnixMicro()}, members(part)...)
			if err := markOfflineScript.Run(ctx, f.rdb, []string{sh.LastSeen, sh.Offline, sh.Returned}, args...).Err(); err != nil {
				return fmt.Errorf("mark devices offline: %w", err)
			}
		}
	}
	return nil
}

// Returned returns the devices whose offline alert fires that reported since; remove
// them with ClearReturned once their alerts are resolved.
func (f *Fleet) Returned(ctx context.Context) ([]string, error) {
	var out []string
	err := f.EachShard(func(sh Shard) error {
		sns, err := f.rdb.SMembers(ctx, sh.Returned).Result()
		if err != nil {
			return fmt.Errorf("read returned devices: %w", err)
		}
		for _, sn := range sns {
			if f.owns(sh, sn) {
				out = append(out, sn)
			}
		}
		return nil
	})
	return out, err
}

// ClearReturned removes sns, whose alerts no longer fire, from the returned and offline
// sets.
func (f *Fleet) ClearReturned(ctx context.Context, sns []string) error {
	for i, sns := range byShard(f, sns, func(sn string) string { return sn }) {
		sh := f.shards[i]
		for part := range slices.Chunk(sns, chunk) {
			m := members(part)
			_, err := f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.SRem(ctx, sh.Returned, m...)
				p.SRem(ctx, sh.Offline, m...)
				return nil
			})
			if err != nil {
				return fmt.Errorf("clear returned devices: %w", err)
			}
		}
	}
	return nil
}

func members(sns []string) []any {
	out := make([]any, len(sns))
	for i, sn := range sns {
		out[i] = sn
	}
	return out
}
