// Package api serves the terminal API, the operator API, asynqmon and the health and
// metrics endpoints over one Echo instance.
package api

import (
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
	"github.com/hibiken/asynqmon"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"monitor/command"
	"monitor/config"
	"monitor/fleet"
)

// Server is the HTTP side of monitor.
type Server struct {
	cfg   *config.Config
	log   *slog.Logger
	queue *asynq.Client
	rdb   redis.UniversalClient
	db    *gorm.DB
	echo  *echo.Echo
	mon   *asynqmon.HTTPHandler
	monRO *asynqmon.HTTPHandler

	deviceKeys deviceKeys     // nil when MONITOR_DEVICE_AUTH=off
	limiter    *deviceLimiter // per-device rate limit of the terminal routes
	loc        *time.Location // where a date-only query parameter starts its day
	// fleet records last-seen times and finds open commands; cmds completes them.
	fleet *fleet.Fleet
	cmds  *command.Store
}

// New returns a Server that enqueues reports with queue, reads from db and rdb, and
// shows asynqmon over the Redis of redisOpt.
func New(cfg *config.Config, log *slog.Logger, queue *asynq.Client, redisOpt asynq.RedisConnOpt, rdb redis.UniversalClient, db *gorm.DB) *Server {
	s := &Server{cfg: cfg, log: log, queue: queue, rdb: rdb, db: db, echo: echo.New()}
	s.fleet = fleet.New(rdb, cfg.OfflineAfter)
	s.cmds = command.New(db, s.fleet, cfg.CommandTTL, log)
	s.mon = asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: redisOpt})
	if cfg.ReadOnlyToken != "" {
		s.monRO = asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: redisOpt, ReadOnly: true})
	}
	var err error
	if s.deviceKeys, err = newDeviceKeys(cfg); err != nil {
		log.Error("device auth refuses every terminal", "err", err)
	}
	s.limiter = newDeviceLimiter(cfg.DeviceRate, cfg.DeviceBurst)
	if s.loc, err = time.LoadLocation(cfg.Timezone); err != nil {
		log.Warn("unknown time zone, dates in queries are UTC", "timezone", cfg.Timezone, "err", err)
		s.loc = time.UTC
	}
	s.routes()
	return s
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// HTTPServer returns an http.Server for the handler with timeouts that keep slow clients
// from holding connections.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Addr:              s.cfg.HTTPAddr,
		Handler:           s.echo,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// Close releases asynqmon's Redis connections.
func (s *Server) Close() error {
	err := s.mon.Close()
	if s.monRO != nil {
		err = errors.Join(err, s.monRO.Close())
	}
	if err != nil {
		return fmt.Errorf("close asynqmon: %w", err)
	}
	return nil
}

func (s *Server) routes() {
	e := s.echo
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(s.log)
	e.Use(middleware.RequestID())
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableErrorHandler: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic in handler", "path", c.Path(), "err", err, "stack", string(stack), "request_id", requestID(c))
			return err
		},
	}))
	// Every route gets a body limit; the log upload enforces its own, larger one.
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit:   "1M",
		Skipper: func(c echo.Context) bool { return c.Path() == "/open/logUpload" },
	}))

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
	h := s.mon
	if c.Get(ctxRole) == roleReadOnly && s.monRO != nil {
		h = s.monRO
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
	admin := sha256.Sum256([]byte(s.cfg.OperatorToken))
	var ro [32]byte
	if s.cfg.ReadOnlyToken != "" {
		ro = sha256.Sum256([]byte(s.cfg.ReadOnlyToken))
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
			if secret != "" && s.cfg.OperatorToken != "" {
				got := sha256.Sum256([]byte(secret))
				if subtle.ConstantTimeCompare(got[:], admin[:]) == 1 {
					c.Set(ctxRole, roleAdmin)
					return next(c)
				}
				if s.cfg.ReadOnlyToken != "" && subtle.ConstantTimeCompare(got[:], ro[:]) == 1 {
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

// readyz answers 200 only when Redis and the database both answer within two seconds.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"redis": "ok", "database": "ok"}
	ready := true
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		checks["redis"] = "unreachable"
		ready = false
		s.log.Warn("readiness: redis", "err", err)
	}
	sqlDB, err := s.db.DB()
	if err == nil {
		err = sqlDB.PingContext(ctx)
	}
	if err != nil {
		checks["database"] = "unreachable"
		ready = false
		s.log.Warn("readiness: database", "err", err)
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, map[string]any{"ready": ready, "checks": checks})
}
