// Package api serves the terminal API, the operator API, asynqmon and the health and
// metrics endpoints over one Echo instance.
package api

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"monitor/command"
	"monitor/fleet"
	"monitor/internal/logctx"
	"monitor/model"
	"monitor/task"
)

// Server is the HTTP side of monitor.
type Server struct {
	opt  Options
	log  *slog.Logger
	echo *echo.Echo

	reports    *task.BatchEnqueuer
	deviceKeys deviceKeys     // nil when device auth is off
	limiter    *deviceLimiter // per-device rate limit of the terminal routes
}

// Options are what the API serves from. The composition root builds the clients and
// services once and hands the API the ones it uses.
type Options struct {
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// Enqueuer enqueues the accepted reports, those that arrive together as one batch
	// task (task.BatchEnqueuer); required. Ingest spreads reports over the ingest queues
	// (default one queue); the Fleet must be sharded over the same queues. BatchMaxRetry
	// is the batch task's retry limit (default asynq's).
	Enqueuer      *asynq.Client
	Ingest        task.Ingest
	BatchMaxRetry int
	// Fleet records last-seen times and finds open commands; Commands completes them.
	// Accepter, when set, records each accepted report instead of Fleet.Accept (the
	// composition root gives it a fleet.Recorder, which buffers the writes).
	Fleet    *fleet.Fleet
	Accepter Accepter
	Commands *command.Store
	// Decommissioner serves DELETE /api/v1/devices/{sn} (alert.Decommissioner).
	Decommissioner Decommissioner
	// DB is the database the operator routes read; Redis is pinged by /readyz.
	DB    *gorm.DB
	Redis redis.UniversalClient
	// RedisMemory, when set, refuses reports with 503 while Redis is over its shed share
	// of maxmemory, and makes /readyz say so; nil never sheds.
	RedisMemory *RedisMemory
	// Monitoring serves asynqmon under /monitoring/; MonitoringReadOnly, when set, is
	// the read-only asynqmon that the read-only token gets. The caller closes both.
	Monitoring, MonitoringReadOnly http.Handler

	// OperatorToken is required; ReadOnlyToken is optional.
	OperatorToken, ReadOnlyToken string
	// DeviceKeys are the tenants' device keys; nil turns device auth off.
	DeviceKeys model.TenantKeys
	// DeviceRate and DeviceBurst limit each device on the terminal routes; defaults 1 and 10.
	DeviceRate  float64
	DeviceBurst int
	// MaxBodyBytes limits a status report (default 64 KiB); LogMaxBytes an uploaded log
	// file (default 32 MiB). LogDir is where uploaded logs are stored; required.
	MaxBodyBytes int64
	LogMaxBytes  int64
	LogDir       string
	// OfflineAfter is the silence after which the operator views call a device offline
	// (default 30m); Location is where a date-only query parameter starts its day (default UTC).
	OfflineAfter time.Duration
	Location     *time.Location
	// Tracer, when set, traces each request and each report's enqueue; nil (tracing
	// off) adds nothing to a request.
	Tracer trace.Tracer
}

// Accepter records an accepted report of sn in the fleet state and returns the id of
// the device's open command, 0 when it has none. LastSeen reads the devices' last-seen
// times back, with those of reports it has not written yet.
type Accepter interface {
	Accept(ctx context.Context, sn string, tenant uint32, at time.Time) (uint64, error)
	LastSeen(ctx context.Context, sns []string) ([]time.Time, error)
}

func (o Options) withDefaults() (Options, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = logctx.Wrap(o.Logger)
	o.Ingest.Queues = cmp.Or(o.Ingest.Queues, 1)
	o.Ingest.Groups = cmp.Or(o.Ingest.Groups, 16)
	o.DeviceRate = cmp.Or(o.DeviceRate, 1)
	o.DeviceBurst = cmp.Or(o.DeviceBurst, 10)
	o.MaxBodyBytes = cmp.Or(o.MaxBodyBytes, 64<<10)
	o.LogMaxBytes = cmp.Or(o.LogMaxBytes, 32<<20)
	o.OfflineAfter = cmp.Or(o.OfflineAfter, 30*time.Minute)
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Accepter == nil && o.Fleet != nil {
		o.Accepter = o.Fleet
	}
	switch {
	case o.Enqueuer == nil || o.Fleet == nil || o.Commands == nil || o.Decommissioner == nil || o.DB == nil || o.Redis == nil || o.Monitoring == nil:
		return o, errors.New("api: the enqueuer, fleet, commands, decommissioner, database, Redis and monitoring are all required")
	case o.OperatorToken == "":
		return o, errors.New("api: no operator token")
	case o.LogDir == "":
		return o, errors.New("api: no log directory")
	case o.DeviceKeys != nil && len(o.DeviceKeys) == 0:
		return o, errors.New("api: device auth is on but no tenant has a key")
	case o.DeviceRate <= 0 || o.DeviceBurst < 1:
		return o, fmt.Errorf("api: device rate %v and burst %d must be positive", o.DeviceRate, o.DeviceBurst)
	case o.MaxBodyBytes < 1 || o.LogMaxBytes < 1:
		return o, errors.New("api: body limits must be positive")
	case o.Ingest.Groups < 1 || o.Ingest.Queues < 1 || o.Ingest.Queues > task.MaxIngestQueues:
		return o, fmt.Errorf("api: %d ingest queues of %d groups", o.Ingest.Queues, o.Ingest.Groups)
	}
	return o, nil
}

// New returns a Server over the clients and services of opt.
func New(o Options) (*Server, error) {
	opt, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{opt: opt, log: opt.Logger, echo: echo.New()}
	s.reports, err = task.NewBatchEnqueuer(opt.Enqueuer, task.BatchEnqueuerOptions{
		Ingest: opt.Ingest, MaxRetry: opt.BatchMaxRetry, TaskTimeout: task.BatchTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s.deviceKeys = newDeviceKeys(opt.DeviceKeys)
	s.limiter = newDeviceLimiter(opt.DeviceRate, opt.DeviceBurst)
	s.routes()
	return s, nil
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// HTTPServer returns an http.Server for the handler on addr, with timeouts that keep
// slow clients from holding connections.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.echo,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

func (s *Server) routes() {
	e := s.echo
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(s.log)
	e.Use(s.requestScope())

	e.POST("/open/statusUpload", s.statusUpload)
	e.POST("/open/logUpload", s.logUpload)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.Handler()))

	mon := e.Group("/monitoring", s.operatorAuth(true))
	mon.Any("", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/monitoring/") })
	mon.Any("/*", s.monitoring)

	e.GET("/fleet", s.fleetPage, s.operatorAuth(true))

	s.operatorRoutes(e.Group("/api/v1", s.operatorAuth(false)))
}

// monitoring serves asynqmon, read-only for the read-only token.
func (s *Server) monitoring(c echo.Context) error {
	h := s.opt.Monitoring
	if c.Get(ctxRole) == roleReadOnly && s.opt.MonitoringReadOnly != nil {
		h = s.opt.MonitoringReadOnly
	}
	h.ServeHTTP(c.Response(), c.Request())
	return nil
}

const (
	ctxRole      = "operator_role"
	roleAdmin    = "admin"
	roleReadOnly = "readonly"
)

// operatorAuth checks the operator token as a Bearer token, and with allowBasic also as
// the password of HTTP Basic so a browser can log in to asynqmon. Tokens are compared as
// SHA-256 digests in constant time, which hides their length too.
func (s *Server) operatorAuth(allowBasic bool) echo.MiddlewareFunc {
	admin := sha256.Sum256([]byte(s.opt.OperatorToken))
	var ro [32]byte
	if s.opt.ReadOnlyToken != "" {
		ro = sha256.Sum256([]byte(s.opt.ReadOnlyToken))
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var secret string
			h := c.Request().Header.Get(echo.HeaderAuthorization)
			// The scheme name is case-insensitive (RFC 9110 11.1).
			if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
				secret = strings.TrimSpace(h[7:])
			} else if _, pass, ok := c.Request().BasicAuth(); ok && allowBasic {
				secret = pass
			}
			if secret != "" && s.opt.OperatorToken != "" {
				got := sha256.Sum256([]byte(secret))
				if subtle.ConstantTimeCompare(got[:], admin[:]) == 1 {
					c.Set(ctxRole, roleAdmin)
					return next(c)
				}
				if s.opt.ReadOnlyToken != "" && subtle.ConstantTimeCompare(got[:], ro[:]) == 1 {
					if !readOnlyAllowed(c.Request()) {
						return errorf(http.StatusForbidden, "the read-only token cannot change anything")
					}
					c.Set(ctxRole, roleReadOnly)
					return next(c)
				}
			}
			if allowBasic {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="monitor operators", charset="UTF-8"`)
			} else {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="monitor operators"`)
			}
			if secret == "" {
				return errorf(http.StatusUnauthorized, "operator credentials required: Authorization: Bearer <token>")
			}
			return errorf(http.StatusUnauthorized, "operator credentials are wrong")
		}
	}
}

// readOnlyAllowed reports whether a read-only operator may make request r: reads only.
func readOnlyAllowed(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when Redis and the database both answer within two seconds and
// Redis is under its shed share of maxmemory.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"redis": "ok", "database": "ok"}
	ready := true
	if err := s.opt.Redis.Ping(ctx).Err(); err != nil {
		checks["redis"] = "unreachable"
		ready = false
		s.log.WarnContext(ctx, "readiness: redis", "err", err)
	} else if s.opt.RedisMemory.Over() {
		checks["redis"] = "near its memory limit: reports are refused until the workers drain it"
		ready = false
	}
	sqlDB, err := s.opt.DB.DB()
	if err == nil {
		err = sqlDB.PingContext(ctx)
	}
	if err != nil {
		checks["database"] = "unreachable"
		ready = false
		s.log.WarnContext(ctx, "readiness: database", "err", err)
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, map[string]any{"ready": ready, "checks": checks})
}
