package clustermetrics

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// cached holds a collector's newest read, so that scrapes within maxAge of it share it
// rather than each reading the store again.
type cached[T any] struct {
	mu     sync.Mutex // held across a read: concurrent scrapes wait for the one read
	readAt time.Time
	val    T
	err    error
}

// get returns the newest read, calling read (bounded by timeout) when it is older than
// maxAge. A failed read is logged as what and served, like a good one, until maxAge.
func (c *cached[T]) get(maxAge, timeout time.Duration, read func(context.Context) (T, error), log *slog.Logger, what string) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && time.Since(c.readAt) < maxAge {
		return c.val, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c.val, c.err = read(ctx)
	c.readAt = time.Now()
	if c.err != nil {
		log.Warn("read "+what, "err", c.err)
	}
	return c.val, c.err
}
