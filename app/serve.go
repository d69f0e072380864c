package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"monitor/api"
	"monitor/config"
	"monitor/task"
)

// serve runs role r until ctx is done or one of its servers stops on its own, then
// shuts down in order within cfg.ShutdownTimeout: stop taking requests, stop
// scheduling, finish running tasks, close the backends. A server that stopped on its
// own is an error, so the process exits non-zero and its supervisor restarts it.
func serve(ctx context.Context, r role, cfg *config.Config, log *slog.Logger, stdout io.Writer) (err error) {
	if !cfg.RedisConfigured() && r != roleAll {
		return fmt.Errorf("monitor %s needs MONITOR_REDIS_ADDR (or MONITOR_REDIS_CLUSTER or MONITOR_REDIS_SENTINELS): the embedded Redis lives inside one process, so only `monitor all` can use it", r)
	}
	if cfg.Embedded() {
		log.Warn("EMBEDDED MODE: Redis runs in this process and the database is an SQLite file under " + cfg.DataDir +
			"; queued reports are lost when the process dies. Set MONITOR_REDIS_ADDR and MONITOR_MYSQL_DSN to use real servers.")
	} else if !cfg.RedisConfigured() || cfg.MySQLDSN == "" {
		log.Warn("partly embedded: set both MONITOR_REDIS_ADDR and MONITOR_MYSQL_DSN for a durable deployment")
	}
	if cfg.OperatorToken == "" {
		cfg.OperatorToken = randomToken()
		fmt.Fprintf(stdout, "operator token (generated for this run): %s\n", cfg.OperatorToken)
	}
	if cfg.DeviceAuth == "off" && r.api() {
		log.Warn("MONITOR_DEVICE_AUTH=off: any client may post reports as any device; use tenant-key outside trials")
	}

	// Every listener is bound before anything starts, so a taken port fails start-up
	// with nothing to stop; the listeners are closed again on any later error.
	var ls listeners
	defer func() {
		if err != nil {
			err = errors.Join(err, ls.close())
		}
	}()
	if r.api() {
		if ls.http, err = listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
		}
	}
	if cfg.PprofAddr != "" {
		if ls.pprof, err = listen("tcp", cfg.PprofAddr); err != nil {
			return fmt.Errorf("listen pprof %s: %w", cfg.PprofAddr, err)
		}
	}
	if cfg.MetricsAddr != "" && !r.api() {
		if ls.metrics, err = listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listen metrics %s: %w", cfg.MetricsAddr, err)
		}
	}

	metrics, err := roleMetrics(r)
	if err != nil {
		return err
	}
	p, err := build(ctx, r, cfg, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.close()) }()
	if err := p.registerClusterMetrics(cfg, registererOf(metrics), log); err != nil {
		return err
	}

	// died receives the error of any server that stops on its own.
	died := make(chan error, 3)
	var servers []*http.Server
	var workerStarted, schedulerStarted, recorderStarted bool
	// shutdown stops whatever started, in order, within cfg.ShutdownTimeout; p.close
	// (deferred above, so run after it) then closes the backends.
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		for _, srv := range servers {
			// Shutdown waits for in-flight requests, so every acknowledged report is enqueued.
			if serr := srv.Shutdown(stopCtx); serr != nil {
				err = errors.Join(err, fmt.Errorf("shut down %s: %w", srv.Addr, serr))
			}
		}
		if recorderStarted {
			// No report comes in any more: the last buffered fleet writes go to Redis.
			if rerr := p.recorder.Close(stopCtx); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		if schedulerStarted {
			p.scheduler.Shutdown()
		}
		if workerStarted {
			if p.redis.Embedded() {
				// The embedded Redis dies with the process: write what was acknowledged first.
				drainIngest(stopCtx, p.redis.ConnOpt, task.Ingest{Queues: cfg.IngestQueues}.QueueNames(), log)
			}
			p.worker.Shutdown()
		}
	}()
	start := func(ln net.Listener, srv *http.Server, name string) {
		srv.Addr = ln.Addr().String()
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				died <- fmt.Errorf("%s server on %s: %w", name, srv.Addr, err)
			}
		}()
	}
	if ls.http != nil {
		base := "http://" + displayAddr(ls.http.Addr())
		srv := p.api.HTTPServer(cfg.HTTPAddr)
		// The shutdown drains reports but cuts log uploads: the terminal uploads again,
		// and a slow one would otherwise hold the shutdown for its whole timeout.
		api.CutUploadsOnShutdown(srv)
		p.recorder.Start()
		recorderStarted = true
		start(ls.http, srv, "http")
		ls.http = nil
		fmt.Fprintf(stdout, "monitor %s listening\n  terminal API  POST %s/open/statusUpload\n  operator API  %s/api/v1 (Authorization: Bearer <token>)\n  asynqmon      %s/monitoring/ (Basic auth, any user, token as password)\n  fleet page    %s/fleet (the same login)\n  metrics       %s/metrics\n",
			r, base, base, base, base, base)
	}
	if ls.pprof != nil {
		log.Warn("pprof listening; do not expose it", "addr", ls.pprof.Addr().String())
		start(ls.pprof, pprofServer(), "pprof")
		ls.pprof = nil
	}
	if ls.metrics != nil {
		log.Info("metrics listening", "addr", ls.metrics.Addr().String())
		start(ls.metrics, metricsServer(log, metrics), "metrics")
		ls.metrics = nil
	}
	if p.worker != nil {
		if err := p.worker.Start(p.workerMux); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		workerStarted = true
	}
	if p.scheduler != nil {
		if err := p.scheduler.Start(); err != nil {
			return fmt.Errorf("start scheduler: %w", err)
		}
		schedulerStarted = true
	}
	log.Info("started", "role", r.String(), "redis", redisName(cfg), "database", dbName(cfg))

	select {
	case <-ctx.Done():
		log.Info("shutting down", "role", r.String())
		return nil
	case err := <-died:
		log.Error("a server stopped on its own; shutting down", "err", err)
		return err
	}
}

// listen binds a listener; tests replace it to reach the listeners of a running process.
var listen = net.Listen

// listeners are the sockets bound at start-up that no server owns yet.
type listeners struct{ http, pprof, metrics net.Listener }

func (ls *listeners) close() error {
	var errs []error
	for _, ln := range []net.Listener{ls.http, ls.pprof, ls.metrics} {
		if ln != nil {
			errs = append(errs, ln.Close())
		}
	}
	return errors.Join(errs...)
}

// drainIngest waits until the ingest queues are empty or ctx ends.
func drainIngest(ctx context.Context, opt asynq.RedisConnOpt, ingest []string, log *slog.Logger) {
	insp := asynq.NewInspector(opt)
	defer func() {
		if err := insp.Close(); err != nil {
			log.Warn("close inspector", "err", err)
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		queues, err := insp.Queues()
		queued := 0
		for _, name := range ingest {
			if err != nil || !slices.Contains(queues, name) {
				continue // no report was ever queued there
			}
			var q *asynq.QueueInfo
			if q, err = insp.GetQueueInfo(name); err == nil {
				queued += q.Size - q.Archived
			}
		}
		if err != nil {
			log.Error("shutdown: cannot tell whether reports are still queued in the embedded Redis; they may be lost", "err", err)
			return
		}
		if queued == 0 {
			return // nothing left to write
		}
		select {
		case <-ctx.Done():
			log.Error("shutdown timeout: reports still queued in the embedded Redis are lost", "queued", queued)
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

// displayAddr is the address to print for a bound address: localhost for an unspecified host.
func displayAddr(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", tcp.Port)
	}
	return a.String()
}

func redisName(cfg *config.Config) string {
	switch {
	case cfg.RedisCluster != "":
		return "cluster " + cfg.RedisCluster
	case cfg.RedisSentinels != "":
		return "sentinel master " + cfg.RedisMaster + " via " + cfg.RedisSentinels
	case cfg.RedisAddr == "":
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
