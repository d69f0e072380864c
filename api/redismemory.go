package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"monitor/backend"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

var reportsShed = promauto.NewCounter(prometheus.CounterOpts{
	Name: "monitor_reports_shed_total", Help: "Reports refused with 503 because Redis was over its shed share of maxmemory.",
})

// RedisMemoryOptions configures NewRedisMemory.
type RedisMemoryOptions struct {
	// ShedShare is the share of Redis's maxmemory at and above which the API refuses
	// reports (default 0.8). The rest is the workers' headroom: under maxmemory with
	// noeviction Redis refuses every write, and a worker needs writes to dequeue,
	// aggregate and delete what it stored, so ingest must stop well before that.
	ShedShare float64
	// Every is how often INFO memory is read (default 1s): a cheap reading for all
	// requests instead of one per request.
	Every  time.Duration
	Logger *slog.Logger
}

func (o RedisMemoryOptions) withDefaults() (RedisMemoryOptions, error) {
	o.ShedShare = cmp.Or(o.ShedShare, 0.8)
	o.Every = cmp.Or(o.Every, time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.ShedShare <= 0 || o.ShedShare > 1:
		return o, fmt.Errorf("api: redis shed share %v is not in (0, 1]", o.ShedShare)
	case o.Every <= 0:
		return o, errors.New("api: redis memory reading interval must be positive")
	}
	return o, nil
}

// RedisMemory reads Redis's memory use periodically and says whether it is at or over
// the shed share of maxmemory. With no maxmemory set it never is.
type RedisMemory struct {
	client redis.UniversalClient
	opt    RedisMemoryOptions
	over   atomic.Bool
	used   atomic.Int64
	limit  atomic.Int64
	stop   chan struct{}
	done   chan struct{}
}

// NewRedisMemory returns a watcher of client's Redis; Start begins the readings.
func NewRedisMemory(client redis.UniversalClient, o RedisMemoryOptions) (*RedisMemory, error) {
	opt, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &RedisMemory{client: client, opt: opt}, nil
}

// Over reports whether the last reading was at or over the shed share of maxmemory.
func (m *RedisMemory) Over() bool { return m != nil && m.over.Load() }

// Start reads the memory once now, then every Options.Every until Stop.
func (m *RedisMemory) Start() {
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	m.read()
	go func() {
		defer close(m.done)
		tick := time.NewTicker(m.opt.Every)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
				m.read()
			}
		}
	}()
}

// Stop ends the readings and waits for the last one; it does nothing before Start.
func (m *RedisMemory) Stop() error {
	if m.stop == nil {
		return nil
	}
	close(m.stop)
	<-m.done
	return nil
}

// read takes one reading. A failed one keeps the previous state: Redis down already
// refuses every enqueue, and a reading lost now and then must not open the gate.
func (m *RedisMemory) read() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	used, limit, err := backend.MemoryUsage(ctx, m.client)
	if err != nil {
		m.opt.Logger.Debug("redis memory: INFO memory failed", "err", err)
		return
	}
	m.used.Store(used)
	m.limit.Store(limit)
	over := limit > 0 && float64(used) >= m.opt.ShedShare*float64(limit)
	if m.over.Swap(over) != over {
		if over {
			m.opt.Logger.Warn("redis is near its memory limit: refusing reports until the workers drain it",
				"used_bytes", used, "maxmemory", limit, "shed_share", m.opt.ShedShare)
		} else {
			m.opt.Logger.Info("redis memory back under the shed share: accepting reports", "used_bytes", used, "maxmemory", limit)
		}
	}
}
