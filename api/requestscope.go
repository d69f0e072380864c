package api

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"monitor/internal/logctx"
	"monitor/internal/tracing"
)

// bodyLimit bounds the body of every route but the two terminal ones, which enforce their
// own, configurable limits (MONITOR_MAX_BODY_BYTES, MONITOR_LOG_MAX_BYTES).
const bodyLimit = "1M"

// requestScope returns the one middleware every request runs through. It gives the
// request its id (the client's X-Request-Id, or a new one) in the response and in the
// request's context, so every line logged with that context names it (logctx); runs the
// request in a server span when tracing; turns a panic into a logged 500; and holds every
// route but the terminal ones to a body of bodyLimit, before any handler or auth reads it.
//
// It is one middleware rather than Echo's RequestID, Recover and BodyLimit because Echo
// builds every middleware's closure anew for each request: those three cost the terminal
// route about 1.3 µs and 9 allocations a report.
func (s *Server) requestScope() echo.MiddlewareFunc {
	ids := newRequestIDs()
	limit := middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: bodyLimit})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			req := c.Request()
			id := req.Header.Get(echo.HeaderXRequestID)
			if id == "" {
				id = ids()
			}
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			ctx := logctx.WithRequestID(req.Context(), id)
			if s.opt.Tracer != nil {
				var span trace.Span
				ctx, span = s.opt.Tracer.Start(tracing.FromHeaders(ctx, propagation.HeaderCarrier(req.Header)), req.Method+" "+c.Path(),
					trace.WithSpanKind(trace.SpanKindServer),
					trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("http.route", c.Path()),
						attribute.String("monitor.request_id", id)))
				// Deferred first, so it runs last: after a panic has become the error.
				defer func() { endServerSpan(span, c, err) }()
			}
			c.SetRequest(req.WithContext(ctx))
			defer func() {
				if r := recover(); r != nil {
					err = s.recovered(c, r)
				}
			}()
			if p := c.Path(); p != "/open/statusUpload" && p != "/open/logUpload" {
				return limit(next)(c)
			}
			return next(c)
		}
	}
}

// recovered logs the panic r of a handler with the panicking goroutine's stack and
// returns it as the error the error handler answers with a 500. http.ErrAbortHandler
// panics on: net/http uses it to abort a response on purpose.
func (s *Server) recovered(c echo.Context, r any) error {
	if r == http.ErrAbortHandler {
		panic(r)
	}
	err, ok := r.(error)
	if !ok {
		err = fmt.Errorf("%v", r)
	}
	stack := make([]byte, 8<<10)
	stack = stack[:runtime.Stack(stack, false)]
	s.log.ErrorContext(c.Request().Context(), "panic in handler", "path", c.Path(), "err", err, "stack", string(stack))
	return err
}

// endServerSpan records the request's status on span and ends it. err is what the
// handler returned: the status the error handler will answer with, not the response's
// yet, which is still unwritten.
func endServerSpan(span trace.Span, c echo.Context, err error) {
	status := c.Response().Status
	var apiErr *Error
	var echoErr *echo.HTTPError
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.Status
	case errors.As(err, &echoErr):
		status = echoErr.Code
	case err != nil:
		status = http.StatusInternalServerError
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if err != nil && status >= 500 {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// newRequestIDs returns a generator of request ids unique to this process: a random
// prefix drawn once and a counter. Echo's default reads 40 bytes of crypto/rand per
// request for an id nobody needs to be unguessable.
func newRequestIDs() func() string {
	prefix := rand.Text()[:16] + "-"
	var n atomic.Uint64
	return func() string {
		var buf [40]byte
		return string(strconv.AppendUint(append(buf[:0], prefix...), n.Add(1), 36))
	}
}
