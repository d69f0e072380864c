// Package redislog adapts slog to go-redis's internal logger, which otherwise prints
// its own raw lines ("redis: 2006/01/02 15:04:05 pool.go:770: ...") to stderr.
package redislog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Logger is a go-redis logger (redis.SetLogger) writing through slog.
type Logger struct{ log *slog.Logger }

// New returns a go-redis logger that writes to log. go-redis logs only what went wrong
// (a pool that cannot dial, a dropped connection), so every line is a warning.
func New(log *slog.Logger) Logger { return Logger{log: log.With("component", "redis")} }

// Printf logs one go-redis message at warning level.
func (l Logger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	l.log.Log(ctx, slog.LevelWarn, strings.TrimSpace(fmt.Sprintf(format, v...)))
}
