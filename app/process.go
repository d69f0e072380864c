package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"monitor/alert"
	"monitor/api"
	"monitor/backend"
	"monitor/command"
	"monitor/config"
	"monitor/fleet"
	"monitor/model"
	"monitor/retention"
	"monitor/scheduler"
	"monitor/task"
	"monitor/worker"
)

// role is what one process runs.
type role int

const (
	roleAll role = iota
	roleAPI
	roleWorker
	roleScheduler
)

func (r role) String() string {
	return [...]string{"all", "api", "worker", "scheduler"}[r]
}

func (r role) api() bool       { return r == roleAll || r == roleAPI }
func (r role) worker() bool    { return r == roleAll || r == roleWorker }
func (r role) scheduler() bool { return r == roleAll || r == roleScheduler }
func (r role) database() bool  { return r != roleScheduler }

// process holds the clients and services of one process, each built once and shared by
// the roles it runs: in `monitor all` the API and the workers use one fleet state and
// one command store. close releases them in the reverse order of building.
type process struct {
	redis *backend.Redis
	db    *gorm.DB // nil for the scheduler
	fleet *fleet.Fleet
	// recorder buffers the API's fleet writes of accepted reports (api role only);
	// serve starts it with the HTTP server and closes it after, flushing the rest.
	recorder *fleet.Recorder
	commands *command.Store
	// decommissioner serves the API's DELETE of a device and the sweep's MONITOR_FORGET_AFTER.
	decommissioner *alert.Decommissioner

	api       *api.Server
	worker    *asynq.Server
	workerMux *asynq.ServeMux
	scheduler *asynq.Scheduler
	tracer    trace.Tracer // nil when tracing is off

	closers []func() error
}

// onClose registers f to run when the process closes, before everything registered earlier.
func (p *process) onClose(f func() error) { p.closers = append(p.closers, f) }

// close runs the registered closers, newest first, and joins their errors.
func (p *process) close() error {
	var errs []error
	for i := len(p.closers) - 1; i >= 0; i-- {
		errs = append(errs, p.closers[i]())
	}
	p.closers = nil
	return errors.Join(errs...)
}

// build opens the backends of r and builds its components; nothing is started. On an
// error everything built so far is closed again.
func build(ctx context.Context, r role, cfg *config.Config, log *slog.Logger) (p *process, err error) {
	p = &process{}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.close())
			p = nil
		}
	}()
	if p.redis, err = backend.OpenRedis(ctx, redisOptions(cfg)); err != nil {
		return p, err
	}
	p.onClose(p.redis.Close)
	if err := p.buildTracer(ctx, cfg.OTLPEndpoint, r); err != nil {
		return p, err
	}
	if r.database() {
		if p.db, err = backend.OpenDatabase(ctx, databaseOptions(cfg, log)); err != nil {
			return p, err
		}
		p.onClose(func() error { return backend.CloseDatabase(p.db) })
		// `monitor all` migrates; the api and worker roles run on a schema that `monitor
		// migrate` made, and refuse a missing, older or newer one rather than
		// acknowledging reports that no table can take.
		if r == roleAll {
			if err := model.Migrate(p.db, model.MigrateOptions{HistoryDays: cfg.RetentionDays}); err != nil {
				return p, err
			}
		} else if err := model.CheckSchema(p.db); err != nil {
			return p, fmt.Errorf("monitor %s: %w", r, err)
		}
		// The fleet state goes through the pipelined client: the API's last-seen script
		// after each enqueue then shares the enqueues' round trips. The workers' calls
		// get no retry from it either; their tasks retry instead.
		p.fleet = fleet.New(p.redis.Pipelined, cfg.IngestQueues)
		if p.commands, err = command.New(p.db, p.fleet, command.Options{TTL: cfg.CommandTTL, Logger: log}); err != nil {
			return p, err
		}
		if p.decommissioner, err = alert.NewDecommissioner(p.db, p.fleet, alert.DecommissionOptions{Commands: p.commands, Logger: log}); err != nil {
			return p, err
		}
	}
	if r.api() {
		if err := p.buildAPI(cfg, log); err != nil {
			return p, err
		}
	}
	if r.worker() {
		if err := p.buildWorker(ctx, cfg, log); err != nil {
			return p, err
		}
	}
	if r.scheduler() {
		opt, err := schedulerOptions(cfg, log)
		if err != nil {
			return p, err
		}
		opt.Redis = p.redis.Client // each enqueued tick, for the workers' SkipStale
		if p.scheduler, err = scheduler.New(p.redis.ConnOpt, opt); err != nil {
			return p, err
		}
	}
	return p, nil
}

// buildAPI builds the HTTP API with its asynqmon and its enqueuer. The enqueuer shares
// the pipelined client, so concurrent enqueues and the last-seen script that follows
// each share Redis round trips; closing p.redis closes that pool, which asynq refuses to.
func (p *process) buildAPI(cfg *config.Config, log *slog.Logger) error {
	// asynqmon shows monitor's binary payloads through task.FormatPayload; its default
	// shows them as "non-printable bytes".
	// With MONITOR_PROMETHEUS_URL its Metrics page charts the queues from that Prometheus.
	formatter := asynqmon.PayloadFormatterFunc(task.FormatPayload)
	monitoring := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: p.redis.ConnOpt, PayloadFormatter: formatter,
		PrometheusAddress: cfg.PrometheusURL})
	p.onClose(monitoring.Close)
	var monitoringRO *asynqmon.HTTPHandler
	if cfg.ReadOnlyToken != "" {
		monitoringRO = asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: p.redis.ConnOpt, ReadOnly: true,
			PayloadFormatter: formatter, PrometheusAddress: cfg.PrometheusURL})
		p.onClose(monitoringRO.Close)
	}
	var keys model.TenantKeys
	if cfg.DeviceAuth == "tenant-key" {
		var err error
		if keys, err = model.ParseTenantKeys(cfg.DeviceKeys); err != nil {
			return fmt.Errorf("MONITOR_DEVICE_KEYS: %w", err)
		}
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return fmt.Errorf("MONITOR_TIMEZONE: %w", err)
	}
	if p.recorder, err = fleet.NewRecorder(p.fleet, fleet.RecorderOptions{Logger: log}); err != nil {
		return err
	}
	opt := api.Options{
		Logger:         log,
		Enqueuer:       asynq.NewClientFromRedisClient(p.redis.Pipelined),
		BatchMaxRetry:  worker.BatchMaxRetry(cfg.BatchRetryFor),
		Ingest:         ingest(cfg),
		Fleet:          p.fleet,
		Accepter:       p.recorder,
		Commands:       p.commands,
		Decommissioner: p.decommissioner,
		DB:             p.db,
		Redis:          p.redis.Client,
		Monitoring:     monitoring,
		OperatorToken:  cfg.OperatorToken,
		ReadOnlyToken:  cfg.ReadOnlyToken,
		DeviceKeys:     keys,
		DeviceRate:     cfg.DeviceRate,
		DeviceBurst:    cfg.DeviceBurst,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		LogMaxBytes:    cfg.LogMaxBytes,
		LogDir:         cfg.LogDir,
		OfflineAfter:   cfg.OfflineAfter,
		Location:       loc,
		Tracer:         p.tracer,
	}
	if monitoringRO != nil {
		opt.MonitoringReadOnly = monitoringRO
	}
	if !p.redis.Embedded() {
		// The embedded Redis has no maxmemory to shed at.
		if opt.RedisMemory, err = api.NewRedisMemory(p.redis.Client, api.RedisMemoryOptions{ShedShare: cfg.RedisShedShare, Logger: log}); err != nil {
			return err
		}
		opt.RedisMemory.Start()
		p.onClose(opt.RedisMemory.Stop)
	}
	p.api, err = api.New(opt)
	return err
}

// buildWorker builds the asynq server and registers the handler of every task type.
func (p *process) buildWorker(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	leftover, err := leftoverIngestQueues(ctx, p.redis.ConnOpt, cfg.IngestQueues)
	if err != nil {
		return err
	}
	if len(leftover) > 0 {
		log.Warn("ingest queues of a former MONITOR_INGEST_QUEUES still hold reports; this worker drains them too", "queues", leftover)
	}
	p.worker, err = worker.NewServer(p.redis.ConnOpt, worker.ServerOptions{
		IngestQueues:     cfg.IngestQueues,
		LeftoverQueues:   leftover,
		Concurrency:      cfg.WorkerConcurrency,
		GroupMaxSize:     cfg.GroupMaxSize,
		GroupMaxDelay:    cfg.GroupMaxDelay,
		GroupGracePeriod: cfg.GroupGracePeriod,
		BatchRetryFor:    cfg.BatchRetryFor,
		ShutdownTimeout:  cfg.ShutdownTimeout,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	// On the process's go-redis client rather than a pool of its own; p.redis closes it.
	enqueuer := asynq.NewClientFromRedisClient(p.redis.Client)
	sweepOpt := sweepOptions(cfg, log)
	sweepOpt.Decommissioner = p.decommissioner
	sweeper, err := alert.NewSweeper(p.db, p.fleet, enqueuer, sweepOpt)
	if err != nil {
		return err
	}
	retentionJob, err := retention.New(p.db, retention.Options{LogDir: cfg.LogDir, Logger: log, Keep: retention.Days{
		Status: cfg.RetentionDays, Alerts: cfg.AlertRetentionDays, Commands: cfg.CommandRetentionDays, Logs: cfg.LogRetentionDays,
	}})
	if err != nil {
		return err
	}
	// No client Timeout: the notify task's deadline (task.NotifyTimeout) bounds each call.
	notifier, err := alert.NewNotifier(alert.NotifierOptions{URL: cfg.AlertWebhookURL, Secret: cfg.AlertWebhookSecret, Client: &http.Client{}})
	if err != nil {
		return err
	}
	// The periodic jobs skip a tick older than one already enqueued or started, so a
	// resumed periodic queue runs its backlog's newest tick only (scheduler.SkipStale).
	periodic := func(h asynq.Handler) asynq.Handler {
		return scheduler.SkipStale(h, scheduler.SkipOptions{Redis: p.redis.Client, Logger: log})
	}
	mux := asynq.NewServeMux()
	batches := worker.NewBatchWriter(p.db, log).Consolidating(asynq.NewClientFromRedisClient(p.redis.Client))
	if p.tracer != nil {
		batches = batches.Traced(p.tracer)
	}
	mux.Handle(task.TypeStatusBatch, batches)
	mux.Handle(task.TypeSweep, periodic(sweeper))
	mux.Handle(task.TypeAlertNotify, notifier)
	mux.Handle(task.TypeCommandSync, periodic(asynq.HandlerFunc(p.commands.HandleSync)))
	mux.Handle(task.TypeLogPull, periodic(asynq.HandlerFunc(p.commands.HandlePull)))
	mux.Handle(task.TypeRetention, periodic(retentionJob))
	p.workerMux = mux
	// asynq leaves a group unlisted when a worker dies mid-aggregation (see GroupRepair).
	in := ingest(cfg)
	repair, err := worker.NewGroupRepair(p.redis.Client, worker.GroupRepairOptions{
		Queues: append(in.QueueNames(), leftover...), Groups: in.GroupNames(), Logger: log,
	})
	if err != nil {
		return err
	}
	repair.Start()
	p.onClose(repair.Stop)
	return nil
}

// leftoverIngestQueues returns the ingest queues on Redis that are not among the n
// configured ones and still hold tasks: left by a former MONITOR_INGEST_QUEUES, or by an
// api replica still running with it. The worker processes them too, so that changing the
// count strands no report; a worker started before such a queue filled does not see it
// until it restarts, so restart the workers after the APIs.
func leftoverIngestQueues(ctx context.Context, opt asynq.RedisConnOpt, n int) (out []string, err error) {
	insp := asynq.NewInspector(opt)
	defer func() {
		if cerr := insp.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close inspector: %w", cerr))
		}
	}()
	queues, err := insp.Queues()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	current := map[string]bool{}
	for _, q := range (task.Ingest{Queues: n}).QueueNames() {
		current[q] = true
	}
	for _, q := range queues {
		if !task.IsIngestQueue(q) || current[q] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			return nil, fmt.Errorf("read queue %s: %w", q, err)
		}
		if info.Size > info.Archived {
			out = append(out, q)
		}
	}
	return out, nil
}

// schedulerOptions returns the periodic jobs cfg asks for: the offline sweep, the
// command sync, the retention and, when MONITOR_LOG_PULL_EVERY is set, the log pull.
// sweepOptions are the offline sweep's options from the configuration.
func sweepOptions(cfg *config.Config, log *slog.Logger) alert.Options {
	return alert.Options{
		OfflineAfter: cfg.OfflineAfter, UnsentThreshold: cfg.UnsentThreshold, Notify: cfg.AlertWebhookURL != "",
		RepeatEvery: cfg.AlertRepeatEvery, GroupWait: cfg.AlertGroupWait, GroupInterval: cfg.AlertGroupInterval,
		ForgetAfter: cfg.ForgetAfter, Logger: log,
	}
}

func schedulerOptions(cfg *config.Config, log *slog.Logger) (scheduler.Options, error) {
	var errs []error
	job := func(key, spec, typ string) scheduler.Job {
		s, err := scheduler.ParseSchedule(spec)
		if err != nil {
			errs = append(errs, &config.KeyError{Key: key, Msg: err.Error()})
		}
		return scheduler.Job{Type: typ, Schedule: s}
	}
	jobs := []scheduler.Job{
		job("MONITOR_SWEEP_EVERY", cfg.SweepEvery, task.TypeSweep),
		job("MONITOR_COMMAND_SYNC_EVERY", cfg.CommandSyncEvery, task.TypeCommandSync),
		job("MONITOR_RETENTION_EVERY", cfg.RetentionEvery, task.TypeRetention),
	}
	jobs[2].Timeout = 12 * time.Hour
	if cfg.LogPullEvery != "" {
		pull := job("MONITOR_LOG_PULL_EVERY", cfg.LogPullEvery, task.TypeLogPull)
		pull.Payload = []byte(cfg.LogPullSelect)
		jobs = append(jobs, pull)
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		errs = append(errs, &config.KeyError{Key: "MONITOR_TIMEZONE", Msg: err.Error()})
	}
	return scheduler.Options{Jobs: jobs, Location: loc, Logger: log}, errors.Join(errs...)
}

// redisOptions names the configured Redis: one server, a cluster or a sentinel set.
func redisOptions(cfg *config.Config) backend.RedisOptions {
	return backend.RedisOptions{Addr: cfg.RedisAddr, Cluster: cfg.RedisClusterAddrs(), Sentinels: cfg.RedisSentinelAddrs(),
		Master: cfg.RedisMaster, Password: cfg.RedisPassword, DB: cfg.RedisDB}
}

// ingest is how the API spreads reports over the ingest queues and their groups.
func ingest(cfg *config.Config) task.Ingest {
	return task.Ingest{Queues: cfg.IngestQueues, Groups: cfg.IngestGroups}
}

// databaseOptions names the configured database.
func databaseOptions(cfg *config.Config, log *slog.Logger) backend.DatabaseOptions {
	return backend.DatabaseOptions{MySQLDSN: cfg.MySQLDSN, DataDir: cfg.DataDir, Logger: log}
}
