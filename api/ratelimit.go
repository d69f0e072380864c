package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var reportsLimited = promauto.NewCounter(prometheus.CounterOpts{
	Name: "monitor_device_rate_limited_total", Help: "Terminal requests refused with 429 because their device sent too fast.",
})

// limiterShards spreads devices over independently locked maps so concurrent requests
// for different devices rarely wait on one another.
const limiterShards = 64

// deviceLimiter is a token bucket per device sn: rate tokens per second, up to burst.
//
// The buckets live in this process only. With N api replicas behind a round-robin
// balancer a device can get up to N times the configured rate and burst through; the
// limit exists to stop a runaway terminal from crowding out the fleet, not to meter it
// exactly, and keeping it in memory costs nothing on the hot path, whereas a Redis-based
// limiter would add a round trip to every report. Balancers that route a client to the
// same replica (sticky by source address) make the limit exact.
//
// A bucket that has refilled completely is indistinguishable from a new one, so it is
// dropped: memory holds only the devices that sent within the last burst/rate seconds
// (10 s by default), a few thousand for 100,000 terminals reporting every few minutes.
type deviceLimiter struct {
	limit float64 // tokens a second
	burst float64
	// idle is how long a bucket takes to refill; sweeps run at most this often per shard.
	idle   time.Duration
	shards [limiterShards]limiterShard
}

type limiterShard struct {
	mu        sync.Mutex
	buckets   map[string]bucket
	lastSweep time.Time
}

// bucket is a device's tokens as of a moment: a value in its shard's map, so a device
// seen for the first time (every report of a burst after an outage) costs a map entry
// and no object of its own to allocate and collect.
type bucket struct {
	tokens float64
	at     int64 // Unix nanoseconds: 16 bytes a bucket, none of them a pointer
}

// tokensAt returns b's tokens at now: refilled at limit per second since b.at, up to burst.
// A now before b.at (two requests' clocks read in the other order) refills nothing.
func (b bucket) tokensAt(now time.Time, limit, burst float64) float64 {
	elapsed := max(now.UnixNano()-b.at, 0)
	return min(burst, b.tokens+float64(elapsed)/1e9*limit)
}

// newDeviceLimiter returns a limiter of perSecond sustained requests and burst per device.
func newDeviceLimiter(perSecond float64, burst int) *deviceLimiter {
	l := &deviceLimiter{limit: perSecond, burst: float64(burst)}
	l.idle = time.Duration(math.Ceil(float64(burst) / perSecond * float64(time.Second)))
	l.idle = max(l.idle, time.Second)
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]bucket)
	}
	return l
}

// allow takes one token of sn's bucket at now. When the bucket is empty it returns false
// and how long until the next token.
func (l *deviceLimiter) allow(sn string, now time.Time) (bool, time.Duration) {
	sh := &l.shards[shardOf(sn)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now.Sub(sh.lastSweep) >= l.idle {
		sh.sweep(now, l.limit, l.burst)
	}
	tokens := l.burst // a device not in the map has a full bucket
	if b, ok := sh.buckets[sn]; ok {
		tokens = b.tokensAt(now, l.limit, l.burst)
	}
	if tokens >= 1 {
		sh.buckets[sn] = bucket{tokens: tokens - 1, at: now.UnixNano()}
		return true, 0
	}
	// Refused: the bucket is left as it was, so a device that keeps asking is not charged.
	wait := time.Duration((1 - tokens) / l.limit * float64(time.Second))
	return false, max(wait, 0)
}

// sweep drops the buckets that are full again; the caller holds sh.mu.
func (sh *limiterShard) sweep(now time.Time, limit, full float64) {
	for sn, b := range sh.buckets {
		if b.tokensAt(now, limit, full) >= full {
			delete(sh.buckets, sn)
		}
	}
	sh.lastSweep = now
}

// size returns the number of buckets held, for tests and metrics.
func (l *deviceLimiter) size() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].buckets)
		l.shards[i].mu.Unlock()
	}
	return n
}

// shardOf is FNV-1a of sn, inlined so the hot path does not allocate a hash.Hash.
func shardOf(sn string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(sn); i++ {
		h ^= uint32(sn[i])
		h *= 16777619
	}
	return h % limiterShards
}

// checkDeviceRate takes one token of sn's bucket: nil when the device is within
// MONITOR_DEVICE_RATE / MONITOR_DEVICE_BURST, else a 429 naming the device with a
// Retry-After header. Other devices are unaffected.
func (s *Server) checkDeviceRate(c echo.Context, sn string) error {
	ok, wait := s.limiter.allow(sn, time.Now())
	if ok {
		return nil
	}
	reportsLimited.Inc()
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(secs))
	return errorf(http.StatusTooManyRequests, "sn %s: %s, retry in %ds", sn, rateText(s.opt.DeviceRate, s.opt.DeviceBurst), secs)
}

func rateText(perSecond float64, burst int) string {
	return fmt.Sprintf("sending faster than %g reports per second (burst %d)", perSecond, burst)
}
