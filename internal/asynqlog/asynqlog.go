// Package asynqlog adapts slog to asynq's Logger interface.
package asynqlog

import (
	"fmt"
	"log/slog"
	"os"
)

// Logger is an asynq.Logger writing through slog.
type Logger struct{ log *slog.Logger }

// New returns an asynq.Logger that writes to log.
func New(log *slog.Logger) Logger { return Logger{log: log.With("component", "asynq")} }

func (l Logger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l Logger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l Logger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l Logger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }

// Fatal logs and exits, as asynq's Logger contract requires.
func (l Logger) Fatal(args ...any) {
	l.log.Error(fmt.Sprint(args...))
	os.Exit(1)
}
