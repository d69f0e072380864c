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

// The offline sweep's state, so that each sweep reads only what changed since the last
// one: the devices that crossed the offline threshold meanwhile, the devices it could
// not decide yet, and the devices whose offline alert fires that reported again.
const (
	// KeyOffline is the set of devices whose offline alert fires. The accept script moves
	// a device that reports to KeyReturned, so the sweep never scans the firing alerts
	// to find the devices that came back.
	KeyOffline = "monitor:offline"
	// KeyReturned is the set of devices whose offline alert fires that reported since.
	KeyReturned = "monitor:offline:returned"
	// KeySweepCutoff is the offline cutoff of the last sweep (Unix micros): devices
	// silent since then or earlier were examined. Without it the next sweep reads every
	// silent device and every firing alert once, and rebuilds KeyOffline.
	KeySweepCutoff = "monitor:sweep:cutoff"
	// KeyHeld is a sorted set, like KeyLastSeen, of the devices past the cutoff that
	// raised no alert yet (held back while intake was down, or not yet in the
	// database), which the next sweep looks at again.
	KeyHeld = "monitor:sweep:held"
)

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
	zs, err := f.rdb.ZRangeWithScores(ctx, KeyHeld, 0, -1).Result()
	if err != nil {
		return st, fmt.Errorf("read held devices: %w", err)
	}
	st.Held = seenOf(zs)
	return st, nil
}

// SaveSweepState records a sweep's cutoff and the devices it held.
func (f *Fleet) SaveSweepState(ctx context.Context, st SweepState) error {
	_, err := f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, KeyHeld)
		for part := range slices.Chunk(st.Held, chunk) {
			zs := make([]redis.Z, len(part))
			for i, s := range part {
				zs[i] = redis.Z{Score: float64(s.At.UnixMicro()), Member: s.SN}
			}
			p.ZAdd(ctx, KeyHeld, zs...)
		}
		p.Set(ctx, KeySweepCutoff, st.Cutoff.UnixMicro(), 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("record sweep state: %w", err)
	}
	return nil
}

// CountSilent counts the devices whose newest report was accepted at or before cutoff,
// in O(log n).
func (f *Fleet) CountSilent(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := f.rdb.ZCount(ctx, KeyLastSeen, "-inf", strconv.FormatInt(cutoff.UnixMicro(), 10)).Result()
	if err != nil {
		return 0, fmt.Errorf("count silent devices: %w", err)
	}
	return n, nil
}

// SetOffline replaces KeyOffline with sns (and KeyReturned with those of them that
// reported after cutoff): the sweep rebuilds them from the firing alerts after Redis
// lost them.
func (f *Fleet) SetOffline(ctx context.Context, sns []string, cutoff time.Time) error {
	if err := f.rdb.Del(ctx, KeyOffline, KeyReturned).Err(); err != nil {
		return fmt.Errorf("rebuild offline devices: %w", err)
	}
	return f.MarkOffline(ctx, sns, cutoff)
}

// markOfflineScript adds each device to KeyOffline, or to KeyReturned when it reported
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
// moves it to KeyReturned. One that reported after cutoff, since the sweep read its
// silence, goes to KeyReturned at once.
func (f *Fleet) MarkOffline(ctx context.Context, sns []string, cutoff time.Time) error {
	for part := range slices.Chunk(sns, chunk) {
		args := append([]any{cutoff.UnixMicro()}, members(part)...)
		if err := markOfflineScript.Run(ctx, f.rdb, []string{KeyLastSeen, KeyOffline, KeyReturned}, args...).Err(); err != nil {
			return fmt.Errorf("mark devices offline: %w", err)
		}
	}
	return nil
}

// Returned returns the devices whose offline alert fires that reported since; remove
// them with ClearReturned once their alerts are resolved.
func (f *Fleet) Returned(ctx context.Context) ([]string, error) {
	sns, err := f.rdb.SMembers(ctx, KeyReturned).Result()
	if err != nil {
		return nil, fmt.Errorf("read returned devices: %w", err)
	}
	return sns, nil
}

// ClearReturned removes sns from KeyReturned, and from KeyOffline, whose alerts no
// longer fire.
func (f *Fleet) ClearReturned(ctx context.Context, sns []string) error {
	for part := range slices.Chunk(sns, chunk) {
		m := members(part)
		_, err := f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.SRem(ctx, KeyReturned, m...)
			p.SRem(ctx, KeyOffline, m...)
			return nil
		})
		if err != nil {
			return fmt.Errorf("clear returned devices: %w", err)
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
