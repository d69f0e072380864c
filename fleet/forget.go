package fleet

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Forget removes sn from the live fleet state: its last-seen time, its tenant binding,
// its open command and its place in the offline sweep's state, in one transaction on
// its shard. It reports whether sn had a last-seen time.
// A device that reports again afterwards is a new device: bound to the tenant of that
// report, and silent only from then.
func (f *Fleet) Forget(ctx context.Context, sn string) (seen bool, err error) {
	sh := f.ShardOf(sn)
	var zrem *redis.IntCmd
	_, err = f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		zrem = p.ZRem(ctx, sh.LastSeen, sn)
		p.HDel(ctx, sh.Tenant, sn)
		p.HDel(ctx, sh.Open, sn)
		p.Incr(ctx, sh.OpenVersion)
		p.SRem(ctx, sh.Offline, sn)
		p.SRem(ctx, sh.Returned, sn)
		p.ZRem(ctx, sh.Held, sn)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("forget device %s: %w", sn, err)
	}
	return zrem.Val() > 0, nil
}

// SilentLongest returns at most limit devices whose newest report was accepted at or
// before cutoff, the longest silent first: the longest silent limit of each shard,
// merged.
func (f *Fleet) SilentLongest(ctx context.Context, cutoff time.Time, limit int) ([]Seen, error) {
	var out []Seen
	err := f.EachShard(func(sh Shard) error {
		zs, err := f.rdb.ZRangeByScoreWithScores(ctx, sh.LastSeen, &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(cutoff.UnixMicro(), 10), Count: int64(limit),
		}).Result()
		if err != nil {
			return fmt.Errorf("read long silent devices: %w", err)
		}
		out = append(out, f.seenOf(sh, zs)...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Seen) int { return a.At.Compare(b.At) })
	return out[:min(len(out), limit)], nil
}
