// Package sqllog is GORM's logger over slog: it logs statements slower than a threshold
// with their duration and their SQL with placeholders, never their arguments (which hold
// terminal data and secrets), and drops everything else, since callers log the errors
// they return.
package sqllog

import (
	"context"
	"log/slog"
	"time"

	"gorm.io/gorm/logger"
)

// Logger is a gorm logger.Interface writing slow statements to slog.
type Logger struct {
	log  *slog.Logger
	slow time.Duration
}

// New returns a Logger that logs to log every statement that takes longer than slow.
func New(log *slog.Logger, slow time.Duration) Logger {
	return Logger{log: log.With("component", "sql"), slow: slow}
}

// LogMode returns l: the level is the slog handler's.
func (l Logger) LogMode(logger.LogLevel) logger.Interface { return l }

// Info, Warn and Error are GORM's own messages (a migration's notes); they carry no arguments.
func (l Logger) Info(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, "gorm: "+msg, "args", len(args))
}

// Warn logs GORM's warning msg; its arguments are counted, not shown.
func (l Logger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, "gorm: "+msg, "args", len(args))
}

// Error logs GORM's error msg; its arguments are counted, not shown.
func (l Logger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, "gorm: "+msg, "args", len(args))
}

// ParamsFilter drops a statement's arguments before GORM renders it for Trace, so the
// SQL Trace receives keeps its placeholders.
func (l Logger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

// maxSQL bounds the statement text of one line: a 1,000-row INSERT is mostly placeholders.
const maxSQL = 300

// Trace logs the statement begun at begin when it took longer than the threshold.
func (l Logger) Trace(ctx context.Context, begin time.Time, fc func() (sql string, rowsAffected int64), err error) {
	took := time.Since(begin)
	if took < l.slow {
		return
	}
	sql, rows := fc()
	if len(sql) > maxSQL {
		sql = sql[:maxSQL] + "…"
	}
	l.log.WarnContext(ctx, "slow sql", "duration", took, "rows", rows, "sql", sql, "failed", err != nil)
}
