package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// servePprof serves the runtime profiles on addr, apart from the API so they are never
// exposed with it, and returns a function that stops the listener.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	stop, bound, err := serveSide(addr, "pprof", mux, log)
	if err == nil {
		log.Warn("pprof listening; do not expose it", "addr", bound)
	}
	return stop, err
}

// serveMetrics serves /metrics and /healthz on addr for the roles that serve no API
// (worker, scheduler), so their counters can be scraped too.
func serveMetrics(addr string, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if _, err := w.Write([]byte(`{"status":"ok"}`)); err != nil {
			log.Debug("write healthz", "err", err)
		}
	})
	stop, bound, err := serveSide(addr, "metrics", mux, log)
	if err == nil {
		log.Info("metrics listening", "addr", bound)
	}
	return stop, err
}

// serveSide serves h on its own listener at addr and returns a function that stops it.
func serveSide(addr, name string, h http.Handler, log *slog.Logger) (stop func(), bound string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen %s %s: %w", name, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+" server stopped", "err", err)
		}
	}()
	return func() {
		if err := srv.Close(); err != nil {
			log.Warn("close "+name+" server", "err", err)
		}
	}, ln.Addr().String(), nil
}
