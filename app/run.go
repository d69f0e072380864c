// Package app is monitor's composition root. It reads the configuration once, builds
// each process's clients and services once (Redis, the database, the fleet state, the
// command store, asynqmon), hands every component only the options it uses, and runs
// the roles with an orderly, bounded shutdown.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/redis/go-redis/v9"

	"monitor/backend"
	"monitor/config"
	"monitor/internal/logctx"
	"monitor/internal/redislog"
	"monitor/internal/term"
	"monitor/model"
	"monitor/simulate"
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

// Run parses args, loads the configuration from the file and environ, and runs the
// command until ctx is done. It returns an error for a bad command or configuration, a
// failed start, and a server that stopped on its own.
func Run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, args := args[0], args[1:]
	var r role
	switch cmd {
	case "simulate":
		return simulate.Run(ctx, args, stdout, stderr)
	case "all":
		r = roleAll
	case "api":
		r = roleAPI
	case "worker":
		r = roleWorker
	case "scheduler":
		r = roleScheduler
	case "migrate":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	fs := flag.NewFlagSet("monitor "+cmd, flag.ContinueOnError)
	file := fs.String("f", "", "YAML config file (default "+config.DefaultFile+" when present)")
	cmdUsage := func(w io.Writer) {
		fs.SetOutput(w)
		fmt.Fprintf(w, "usage: monitor %s [-f config.yaml]\n\n", cmd)
		fs.PrintDefaults()
	}
	// The flag package's own messages are dropped: a bad flag comes back as the returned
	// error, and -h is a request for the usage on stdout, not a failure.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cmdUsage(stdout)
			return nil
		}
		cmdUsage(stderr)
		return err
	}
	if fs.NArg() > 0 {
		cmdUsage(stderr)
		return strayArgument(fs.Arg(0))
	}
	cfg, err := config.Load(*file, environ)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	// go-redis (under asynq and the fleet state) logs through its own package-wide
	// logger; set once here, its lines come out as this process's slog lines.
	redis.SetLogger(redislog.New(log))
	for _, w := range config.EnvWarnings(environ) {
		log.Warn("config: " + w)
	}
	if cmd == "migrate" {
		return migrate(ctx, cfg, log)
	}
	tuneGC(environ)
	return serve(ctx, r, cfg, log, stdout)
}

// strayArgument is the error for a positional argument after the command, which monitor
// takes none of: `monitor all prod.yaml` would otherwise ignore prod.yaml and run on the
// defaults (embedded mode) instead of the file's settings.
func strayArgument(arg string) error {
	hint := ""
	ext := strings.ToLower(filepath.Ext(arg))
	fi, err := os.Stat(arg)
	if ext == ".yaml" || ext == ".yml" || err == nil && fi.Mode().IsRegular() {
		hint = fmt.Sprintf(" (did you mean -f %s?)", arg)
	}
	return fmt.Errorf("unexpected argument %q: the command takes only -f FILE%s", arg, hint)
}

// newLogger returns the process's logger at level in format (json, text, or empty for
// json unless w is a terminal), which config.Validate has checked. Every line logged with
// a request's or a task's context carries its id (logctx).
func newLogger(level, format string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	if format == "" {
		format = "json"
		if term.IsTerminal(w) {
			format = "text"
		}
	}
	opt := &slog.HandlerOptions{Level: l}
	var h slog.Handler = slog.NewJSONHandler(w, opt)
	if format == "text" {
		h = slog.NewTextHandler(w, opt)
	}
	return slog.New(logctx.NewHandler(h))
}

// migrate creates or upgrades the schema of the configured database.
func migrate(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	db, err := backend.OpenDatabase(ctx, databaseOptions(cfg, log))
	if err != nil {
		return err
	}
	err = model.Migrate(db, model.MigrateOptions{HistoryDays: cfg.RetentionDays})
	return errors.Join(err, backend.CloseDatabase(db))
}
