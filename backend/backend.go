// Package backend opens monitor's two backends, Redis and the SQL database: either the
// real servers named in the configuration, or embedded in-process stand-ins for trying
// monitor out with nothing but Go installed.
package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"

	"monitor/internal/redispipe"
	"monitor/internal/sqllog"
)

// Redis is a connection to Redis: the options asynq needs, a go-redis client for the
// fleet state monitor keeps on Redis itself, and a pipelined client for the API. Each is
// for one server, a Redis Cluster or a Sentinel-watched master alike.
type Redis struct {
	ConnOpt asynq.RedisConnOpt
	Client  redis.UniversalClient
	// Pipelined is for the API's asynq client (asynq.NewClientFromRedisClient) and the
	// fleet state, whose last-seen script follows each enqueue: concurrent calls share round trips (see
	// redispipe), and a failed one is never retried, because a retried enqueue whose
	// first attempt did run fails as a task ID conflict and turns an accepted report into
	// a 503. The terminal retries instead.
	Pipelined redis.UniversalClient
	pipelined redis.UniversalClient
	// embedded is the in-process server when no Redis address is configured.
	embedded *miniredis.Miniredis
}

// Embedded reports whether this is the in-process Redis, which keeps nothing on restart.
func (r *Redis) Embedded() bool { return r.embedded != nil }

// Close closes the client and stops the embedded server, if any.
func (r *Redis) Close() error {
	err := errors.Join(r.Client.Close(), r.pipelined.Close())
	if r.embedded != nil {
		r.embedded.Close()
	}
	if err != nil {
		return fmt.Errorf("close redis: %w", err)
	}
	return nil
}

// RedisOptions names the Redis to open: Addr, Cluster or Sentinels with Master, at most one.
type RedisOptions struct {
	// Addr is host:port of one server; all three empty starts an embedded Redis on a
	// loopback port.
	Addr string
	// Cluster is the seed addresses of a Redis Cluster.
	Cluster []string
	// Sentinels are the addresses of the Sentinels that watch the master named Master.
	Sentinels []string
	Master    string
	Password  string
	DB        int
}

// Pool sizes; a cluster client has a pool of this size per node. poolSize is for the
// go-redis client of monitor's own calls. asynqPoolSize is for asynq's clients (the
// worker's server, the scheduler, the inspectors): a worker whose 256 batch tasks finish
// together would otherwise open as many connections as its pool allows, and each costs
// Redis about 30 KB while busy (128 clients: 4.0 MB of mem_clients_normal), which counts
// against maxmemory and the API's shed share. The API's enqueues use the pipelined
// client's pool (2 × redispipe.MaxFlushers).
const (
	poolSize      = 128
	asynqPoolSize = 32
)

// OpenRedis connects to the Redis of opt, or starts an embedded one when opt names none.
func OpenRedis(ctx context.Context, opt RedisOptions) (*Redis, error) {
	if opt.DB < 0 || opt.DB > 15 {
		return nil, fmt.Errorf("redis db %d is not 0-15", opt.DB)
	}
	r := &Redis{}
	name := opt.Addr
	// RESP2: monitor uses no push notifications, and RESP3's check for them costs a
	// peek at every reply on the enqueue path. The pipelined clients never retry (see
	// Redis.Pipelined) and wait longer for a reply, as a pipeline carries many calls.
	pipeTimeout := 5 * time.Second
	switch {
	case len(opt.Cluster) > 0:
		if opt.DB != 0 {
			return nil, fmt.Errorf("redis db %d: a Redis Cluster has only db 0", opt.DB)
		}
		name = strings.Join(opt.Cluster, ",")
		r.ConnOpt = asynq.RedisClusterClientOpt{Addrs: opt.Cluster, Password: opt.Password}
		r.Client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: opt.Cluster, Password: opt.Password,
			PoolSize: poolSize, Protocol: 2})
		r.pipelined = redis.NewClusterClient(&redis.ClusterOptions{Addrs: opt.Cluster, Password: opt.Password,
			PoolSize: 2 * redispipe.MaxFlushers, Protocol: 2, MaxRetries: -1, ReadTimeout: pipeTimeout})
	case len(opt.Sentinels) > 0:
		if opt.Master == "" {
			return nil, errors.New("redis sentinels: no master name")
		}
		name = opt.Master + "@" + strings.Join(opt.Sentinels, ",")
		r.ConnOpt = asynq.RedisFailoverClientOpt{MasterName: opt.Master, SentinelAddrs: opt.Sentinels,
			Password: opt.Password, DB: opt.DB, PoolSize: asynqPoolSize}
		r.Client = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: opt.Master, SentinelAddrs: opt.Sentinels,
			Password: opt.Password, DB: opt.DB, PoolSize: poolSize, Protocol: 2})
		r.pipelined = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: opt.Master, SentinelAddrs: opt.Sentinels,
			Password: opt.Password, DB: opt.DB, PoolSize: 2 * redispipe.MaxFlushers, Protocol: 2, MaxRetries: -1,
			ReadTimeout: pipeTimeout})
	default:
		addr := opt.Addr
		if addr == "" {
			m, err := miniredis.Run()
			if err != nil {
				return nil, fmt.Errorf("start embedded redis: %w", err)
			}
			r.embedded = m
			addr, name = m.Addr(), "embedded"
		}
		r.ConnOpt = asynq.RedisClientOpt{Addr: addr, Password: opt.Password, DB: opt.DB, PoolSize: asynqPoolSize}
		r.Client = redis.NewClient(&redis.Options{Addr: addr, Password: opt.Password, DB: opt.DB, PoolSize: poolSize, Protocol: 2})
		r.pipelined = redis.NewClient(&redis.Options{Addr: addr, Password: opt.Password, DB: opt.DB,
			PoolSize: 2 * redispipe.MaxFlushers, Protocol: 2, MaxRetries: -1, ReadTimeout: pipeTimeout})
	}
	r.Pipelined = redispipe.New(r.pipelined)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.Client.Ping(pingCtx).Err(); err != nil {
		if cerr := r.Close(); cerr != nil {
			err = fmt.Errorf("%w (and %v)", err, cerr)
		}
		return nil, fmt.Errorf("redis %s: %w", name, err)
	}
	return r, nil
}

// DatabaseOptions names the database to open.
type DatabaseOptions struct {
	// MySQLDSN is a go-sql-driver DSN; empty opens the SQLite file monitor.db in DataDir.
	MySQLDSN string
	DataDir  string
	// Logger hears about a failure to close after a failed ping and about every statement
	// slower than SlowSQL (default 500ms), with its duration but not its arguments; nil
	// discards them.
	Logger  *slog.Logger
	SlowSQL time.Duration
}

// OpenDatabase opens the database of opt. It does not migrate.
func OpenDatabase(ctx context.Context, opt DatabaseOptions) (*gorm.DB, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gcfg := &gorm.Config{
		Logger:                 sqllog.New(log, cmp.Or(opt.SlowSQL, 500*time.Millisecond)),
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
	}
	var db *gorm.DB
	var err error
	if opt.MySQLDSN != "" {
		dsn, derr := MySQLDSN(opt.MySQLDSN)
		if derr != nil {
			return nil, derr
		}
		db, err = gorm.Open(gormmysql.Open(dsn), gcfg)
	} else {
		if opt.DataDir == "" {
			return nil, errors.New("open database: neither a MySQL DSN nor a data directory")
		}
		if err := os.MkdirAll(opt.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		path := filepath.Join(opt.DataDir, "monitor.db")
		db, err = gorm.Open(sqlite.Open(SQLiteDSN(path)), gcfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if db.Dialector.Name() == "sqlite" {
		// SQLite has one writer; one connection turns lock errors into waiting.
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(32)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		if cerr := sqlDB.Close(); cerr != nil {
			log.Warn("close database after failed ping", "err", cerr)
		}
		return nil, fmt.Errorf("database: %w", err)
	}
	return db, nil
}

// SQLiteDSN returns the DSN of an SQLite file with WAL and a busy timeout.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
}

// MySQLDSN normalises a go-sql-driver DSN: times are parsed as UTC, and parameters are
// interpolated client-side so a multi-row INSERT is one round trip, not prepare+exec+close.
// It refuses allowAllFiles=true.
func MySQLDSN(dsn string) (string, error) {
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("MONITOR_MYSQL_DSN: %w", err)
	}
	if mc.AllowAllFiles {
		// The workers' LOAD DATA LOCAL reads only what they register; with this the
		// database server could ask for, and get, any file this process can read.
		return "", errors.New("MONITOR_MYSQL_DSN: allowAllFiles=true would let the database server read any file of this host; monitor needs none")
	}
	mc.ParseTime = true
	mc.Loc = time.UTC
	mc.InterpolateParams = true
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	if _, ok := mc.Params["charset"]; !ok {
		mc.Params["charset"] = "utf8mb4"
	}
	// A load of the workers skips the rows already stored, each with a warning, and must
	// see every warning to tell that nothing else was skipped: the server keeps only 64
	// unless told more. 65535 is the most it keeps.
	if _, ok := mc.Params["max_error_count"]; !ok {
		mc.Params["max_error_count"] = "65535"
	}
	if mc.Timeout == 0 {
		mc.Timeout = 5 * time.Second
	}
	return mc.FormatDSN(), nil
}

// CloseDatabase closes the database's connection pool.
func CloseDatabase(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	if err := sqlDB.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}
