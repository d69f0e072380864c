package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"monitor/internal/tracing"
	"monitor/model"
	"monitor/task"
)

var (
	reportsAccepted = promauto.NewCounter(prometheus.CounterOpts{
		Name: "monitor_reports_accepted_total", Help: "Reports acknowledged to terminals (durably enqueued).",
	})
	reportsRejected = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "monitor_reports_rejected_total", Help: "Reports refused, by HTTP status.",
	}, []string{"status"})
	enqueueSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "monitor_enqueue_seconds", Help: "Time a report waits for its batch to be enqueued on Redis.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
	})
)

// okReply is statusReply{Msg: "ok"} encoded once: the answer to a report with no command.
var okReply = []byte(`{"code":0,"msg":"ok","cmd":0,"cmdId":0}`)

// bodyPool recycles request body buffers on the hot path.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// statusReply is the answer to a terminal: cmd is the command word (0 nothing to do,
// 1 upload logs) and cmdId names the command when there is one.
type statusReply struct {
	Code  int    `json:"code"`
	Msg   string `json:"msg"`
	Cmd   int    `json:"cmd"`
	CmdID uint64 `json:"cmdId"`
}

// statusUpload accepts one terminal report. It answers 200 only after the report is on
// Redis, so an acknowledged report is never lost; anything refused enqueues nothing.
func (s *Server) statusUpload(c echo.Context) error {
	err := s.acceptReport(c)
	if err != nil {
		var apiErr *Error
		status := http.StatusInternalServerError
		if errors.As(err, &apiErr) {
			status = apiErr.Status
		}
		reportsRejected.WithLabelValues(strconv.Itoa(status)).Inc()
	}
	return err
}

func (s *Server) acceptReport(c echo.Context) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			// 400, not 415: the contract gives terminals 400 for every malformed request.
			return errorf(http.StatusBadRequest, "Content-Type: want application/json, got %q", model.Clip(ct))
		}
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			bodyPool.Put(buf)
		}
	}()
	buf.Reset()
	if err := readBody(buf, req, s.opt.MaxBodyBytes); err != nil {
		return err
	}
	r, err := model.ParseReport(buf.Bytes())
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	if err := s.checkDeviceKey(c, r.Tenant); err != nil {
		return err
	}
	// Before anything writes to Redis: the tenant binding is a write too.
	if s.opt.RedisMemory.Over() {
		reportsShed.Inc()
		return &Error{Status: http.StatusServiceUnavailable, Msg: "queue full, nothing was accepted: retry later"}
	}
	// Before the rate limit, so that refused reports naming a device of another tenant
	// do not spend the real device's budget.
	unbind, err := s.checkDeviceTenant(c, &r)
	if err != nil {
		return err
	}
	if err := s.checkDeviceRate(c, r.SN); err != nil {
		unbind()
		return err
	}
	r.AcceptedAt = time.Now().UTC().Truncate(time.Microsecond)

	ctx, traceparent := req.Context(), ""
	if s.opt.Tracer != nil {
		// The enqueue's span context rides in the batch task's links to the batch's span.
		var span trace.Span
		ctx, span = s.opt.Tracer.Start(ctx, "enqueue "+task.TypeStatusBatch, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("messaging.destination.name", s.opt.Ingest.Queue(r.SN)), attribute.String("monitor.sn", r.SN)))
		defer span.End()
		traceparent = tracing.Traceparent(ctx)
	}
	start := time.Now()
	if err := s.reports.Enqueue(ctx, &r, traceparent); err != nil {
		unbind()
		return &Error{Status: http.StatusServiceUnavailable, Msg: "queue unavailable, nothing was accepted: retry later", Err: err}
	}
	enqueueSeconds.Observe(time.Since(start).Seconds())
	reportsAccepted.Inc()
	rep := s.reply(req.Context(), &r)
	if rep == (statusReply{Msg: "ok"}) {
		return c.JSONBlob(http.StatusOK, okReply) // nearly every reply: no encoding per request
	}
	return c.JSON(http.StatusOK, rep)
}

// readBody reads at most limit bytes of the request body into buf; a larger body is a 413.
func readBody(buf *bytes.Buffer, req *http.Request, limit int64) error {
	if req.ContentLength > limit {
		return errorf(http.StatusRequestEntityTooLarge, "body: %d bytes is over the limit of %d", req.ContentLength, limit)
	}
	n, err := buf.ReadFrom(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Msg: "body: could not be read", Err: fmt.Errorf("read body: %w", err)}
	}
	if n > limit {
		return errorf(http.StatusRequestEntityTooLarge, "body: over the limit of %d bytes", limit)
	}
	return nil
}

// reply records the accepted report's last-seen time and finds the device's open
// command, in one Redis round trip. The report is already enqueued, so a failure here
// still answers 200 (without a command): the next report records the device again.
func (s *Server) reply(ctx context.Context, r *model.Report) statusReply {
	// Not cancelled with the request: a terminal that hangs up must not undo the record.
	// The Accepter bounds its round trip itself (the Recorder makes none for most reports).
	ctx = context.WithoutCancel(ctx)
	id, err := s.opt.Accepter.Accept(ctx, r.SN, r.Tenant, r.AcceptedAt)
	if err != nil {
		lastSeenFailed.Inc()
		s.log.WarnContext(ctx, "report enqueued but last seen not recorded", "sn", r.SN, "err", err)
		return statusReply{Msg: "ok"}
	}
	if id == 0 {
		return statusReply{Msg: "ok"}
	}
	commandsDelivered.Inc()
	return statusReply{Msg: "ok", Cmd: 1, CmdID: id}
}

var (
	lastSeenFailed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "monitor_last_seen_failures_total", Help: "Accepted reports whose last-seen time could not be recorded on Redis.",
	})
	commandsDelivered = promauto.NewCounter(prometheus.CounterOpts{
		Name: "monitor_command_deliveries_total", Help: "Report replies that carried a command.",
	})
)
