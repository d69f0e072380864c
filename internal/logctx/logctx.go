// Package logctx carries a request's id in its context and adds the request and task ids
// to every slog line logged with a context that holds them, so a line says which request
// or asynq task it concerns without each call site naming it.
package logctx

import (
	"context"
	"log/slog"

	"github.com/hibiken/asynq"
)

type requestIDKey struct{}

// WithRequestID returns ctx carrying the HTTP request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Handler is a slog.Handler that adds request_id and task_id to each record from the
// context it is logged with (asynq puts the task id in a handler's context).
type Handler struct{ slog.Handler }

// NewHandler wraps h.
func NewHandler(h slog.Handler) Handler { return Handler{h} }

// Handle adds the context's ids to r and passes it on.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if id, ok := asynq.GetTaskID(ctx); ok {
		r.AddAttrs(slog.String("task_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapping for loggers made with With.
func (h Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return Handler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapping for loggers made with WithGroup.
func (h Handler) WithGroup(name string) slog.Handler { return Handler{h.Handler.WithGroup(name)} }

// Wrap returns log with its handler wrapped in Handler, or log itself when it already is:
// a component that promises ids in its lines wraps whatever logger it is given.
func Wrap(log *slog.Logger) *slog.Logger {
	if _, ok := log.Handler().(Handler); ok {
		return log
	}
	return slog.New(Handler{log.Handler()})
}
