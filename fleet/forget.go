package fleet

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Forget removes sn from the live fleet state: its last-seen time, its tenant binding
// its open command and its place in the offline sweep's state, in one transaction. It reports whether sn had a last-seen time.
// A device that reports again afterwards is a new device: bound to the tenant of that
// report, and silent only from then.
func (f *Fleet) Forget(ctx context.Context, sn string) (seen bool, err error) {
	var zrem *redis.IntCmd
	_, err = f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		zrem = p.ZRem(ctx, KeyLastSeen, sn)
		p.HDel(ctx, KeyTenant, sn)
		p.HDel(ctx, KeyOpen, sn)
		p.SRem(ctx, KeyOffline, sn)
		p.SRem(ctx, KeyReturned, sn)
		p.ZRem(ctx, KeyHeld, sn)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("forget device %s: %w", sn, err)
	}
	return zrem.Val() > 0, nil
}

// SilentLongest returns at most limit devices whose newest report was accepted at or
// before cutoff, the longest silent first.
func (f *Fleet) SilentLongest(ctx context.Context, cutoff time.Time, limit int) ([]Seen, error) {
	zs, err := f.rdb.ZRangeByScoreWithScores(ctx, KeyLastSeen, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(cutoff.UnixMicro(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read long silent devices: %w", err)
	}
	return seenOf(zs), nil
}
