package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"monitor/alert"
	"monitor/api"
	"monitor/command"
	"monitor/config"
	"monitor/fleet"
	"monitor/model"
	"monitor/retention"
	"monitor/scheduler"
	"monitor/simulate"
	"monitor/store"
	"monitor/task"
	"monitor/worker"
)

const usage = `usage: monitor <command> [-f config.yaml]

commands:
  all        API, workers, scheduler and asynqmon in one process
  api        the HTTP API and asynqmon
  worker     the asynq workers that batch reports into the database
  scheduler  the periodic jobs (any number of replicas; each tick runs once)
  migrate    create or upgrade the schema, then exit
  simulate   a terminal-fleet simulator and load generator (see monitor simulate -h)
`

// run parses args, loads the config once and runs the command until ctx is done.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "simulate":
		return simulate.Run(ctx, args, stdout)
	case "all", "api", "worker", "scheduler", "migrate":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	fs := flag.NewFlagSet("monitor "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "YAML config file (default "+config.DefaultFile+" when present)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*file, environ)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := newLogger(cfg, stderr)
	if cmd == "migrate" {
		return migrate(ctx, cfg, log)
	}
	tuneGC(environ)
	return serve(ctx, cmd, cfg, log, stdout)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo // Validate has already refused anything else.
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func migrate(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	db, err := store.OpenDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	err = model.Migrate(db)
	return errors.Join(err, store.CloseDB(db))
}

// serve runs the role cmd ("all", "api", "worker" or "scheduler") until ctx is done,
// then shuts down in order: stop taking requests, stop scheduling, finish running
// tasks, close the backends.
func serve(ctx context.Context, cmd string, cfg *config.Config, log *slog.Logger, stdout io.Writer) (err error) {
	if cfg.RedisAddr == "" && cmd != "all" {
		return fmt.Errorf("monitor %s needs MONITOR_REDIS_ADDR: the embedded Redis lives inside one process, so only `monitor all` can use it", cmd)
	}
	if cfg.Embedded() {
		log.Warn("EMBEDDED MODE: Redis runs in this process and the database is an SQLite file under " + cfg.DataDir +
			"; queued reports are lost when the process dies. Set MONITOR_REDIS_ADDR and MONITOR_MYSQL_DSN to use real servers.")
	} else if cfg.RedisAddr == "" || cfg.MySQLDSN == "" {
		log.Warn("partly embedded: set both MONITOR_REDIS_ADDR and MONITOR_MYSQL_DSN for a durable deployment")
	}
	if cfg.OperatorToken == "" {
		cfg.OperatorToken = randomToken()
		fmt.Fprintf(stdout, "operator token (generated for this run): %s\n", cfg.OperatorToken)
	}
	if cfg.DeviceAuth == "off" && cmd != "worker" && cmd != "scheduler" {
		log.Warn("MONITOR_DEVICE_AUTH=off: any client may post reports as any device; use tenant-key outside trials")
	}

	rds, err := store.OpenRedis(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rds.Close()) }()

	var db *gorm.DB
	if cmd != "scheduler" {
		if db, err = store.OpenDB(ctx, cfg, log); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, store.CloseDB(db)) }()
		if cmd == "all" {
			if err := model.Migrate(db); err != nil {
				return err
			}
		}
	}

	var srv *asynq.Server
	if cmd == "all" || cmd == "worker" {
		srv = worker.NewServer(rds.Opt, cfg, log)
		mux := asynq.NewServeMux()
		mux.Handle(task.TypeStatusBatch, worker.NewBatchWriter(db, log))
		notifyQueue := asynq.NewClient(rds.Opt)
		defer func() { err = errors.Join(err, notifyQueue.Close()) }()
		registerJobs(mux, cfg, db, rds, notifyQueue, log)
		if err := srv.Start(mux); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
	}
	var sched *asynq.Scheduler
	if cmd == "all" || cmd == "scheduler" {
		if sched, err = scheduler.New(rds.Opt, cfg, log); err != nil {
			return err
		}
		if err := sched.Start(); err != nil {
			return fmt.Errorf("start scheduler: %w", err)
		}
	}
	var (
		httpSrv *http.Server
		apiSrv  *api.Server
		queue   *asynq.Client
		httpErr = make(chan error, 1)
	)
	if cmd == "all" || cmd == "api" {
		// Concurrent enqueues, and the last-seen script that follows each, share Redis
		// round trips (see store.Redis.Queue); rds owns the pool.
		queue = asynq.NewClientFromRedisClient(rds.Queue)
		apiSrv = api.New(cfg, log, queue, rds.Opt, rds.Queue, db)
		httpSrv = apiSrv.HTTPServer()
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
		}
		go func() { httpErr <- httpSrv.Serve(ln) }()
		base := "http://" + displayAddr(ln.Addr())
		fmt.Fprintf(stdout, "monitor %s listening\n  terminal API  POST %s/open/statusUpload\n  operator API  %s/api/v1 (Authorization: Bearer <token>)\n  asynqmon      %s/monitoring/ (Basic auth, any user, token as password)\n  fleet page    %s/fleet (the same login)\n  metrics       %s/metrics\n",
			cmd, base, base, base, base, base)
	}
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	if cfg.MetricsAddr != "" && httpSrv == nil {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	log.Info("started", "role", cmd, "redis", redisName(cfg), "database", dbName(cfg))

	select {
	case <-ctx.Done():
		log.Info("shutting down", "role", cmd)
	case err := <-httpErr:
		log.Error("http server stopped", "err", err)
	}

	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if httpSrv != nil {
		// Shutdown waits for in-flight requests, so every acknowledged report is enqueued.
		if err := httpSrv.Shutdown(stopCtx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		// queue shares rds's pool (asynq refuses to close it): rds.Close does.
		errs = append(errs, apiSrv.Close())
	}
	if sched != nil {
		sched.Shutdown()
	}
	if srv != nil {
		if rds.Embedded() {
			// The embedded Redis dies with the process: write what was acknowledged first.
			drainIngest(stopCtx, rds.Opt, log)
		}
		srv.Shutdown()
	}
	return errors.Join(errs...)
}

// registerJobs adds the handlers of the periodic jobs and of alert notifications to mux.
func registerJobs(mux *asynq.ServeMux, cfg *config.Config, db *gorm.DB, rds *store.Redis, queue *asynq.Client, log *slog.Logger) {
	fl := fleet.New(rds.Client, cfg.OfflineAfter)
	cmds := command.New(db, fl, cfg.CommandTTL, log)
	mux.Handle(task.TypeSweep, alert.NewSweeper(db, fl, queue, alert.Options{
		OfflineAfter: cfg.OfflineAfter, UnsentThreshold: cfg.UnsentThreshold, Notify: cfg.AlertWebhookURL != "",
	}, log))
	mux.Handle(task.TypeAlertNotify, alert.NewNotifier(cfg.AlertWebhookURL, &http.Client{Timeout: 30 * time.Second}))
	mux.HandleFunc(task.TypeCommandSync, cmds.HandleSync)
	mux.HandleFunc(task.TypeLogPull, cmds.HandlePull)
	mux.Handle(task.TypeRetention, retention.New(db, cfg.LogDir, retention.Days{
		Status: cfg.RetentionDays, Alerts: cfg.AlertRetentionDays, Commands: cfg.CommandRetentionDays, Logs: cfg.LogRetentionDays,
	}, log))
}

// drainIngest waits until the ingest queue is empty or ctx ends.
func drainIngest(ctx context.Context, opt asynq.RedisConnOpt, log *slog.Logger) {
	insp := asynq.NewInspector(opt)
	defer func() {
		if err := insp.Close(); err != nil {
			log.Warn("close inspector", "err", err)
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		q, err := insp.GetQueueInfo(task.QueueIngest)
		if err != nil || q.Size-q.Archived == 0 {
			return // no queue yet, or nothing left to write
		}
		select {
		case <-ctx.Done():
			log.Error("shutdown timeout: reports still queued in the embedded Redis are lost", "queued", q.Size-q.Archived)
			return
		case <-tick.C:
		}
	}
}

func randomToken() string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("localhost:%d", tcp.Port)
		}
	}
	return a.String()
}

func redisName(cfg *config.Config) string {
	if cfg.RedisAddr == "" {
		return "embedded"
	}
	return cfg.RedisAddr
}

func dbName(cfg *config.Config) string {
	if cfg.MySQLDSN == "" {
		return "embedded sqlite"
	}
	return "mysql"
}
