// Package testenv gives each test its own clean Redis db and SQL database.
//
// It uses the real Redis (MONITOR_TEST_REDIS_ADDR, default 127.0.0.1:6379) and MySQL or
// MariaDB (MONITOR_TEST_MYSQL_DSN, default root@tcp(127.0.0.1:3306)/) when they answer,
// and embedded stand-ins otherwise. With MONITOR_TEST_REAL=1 a missing server fails the
// test instead. A benchmark never measures a stand-in unless MONITOR_BENCH_EMBEDDED=1
// says so: without it, a missing server fails the benchmark.
package testenv

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"monitor/backend"
	"monitor/model"
)

// Real reports whether MONITOR_TEST_REAL=1 demands real servers.
func Real() bool { return os.Getenv("MONITOR_TEST_REAL") == "1" }

// RedisAddr is the real Redis that tests use when it answers.
func RedisAddr() string { return cmp.Or(os.Getenv("MONITOR_TEST_REDIS_ADDR"), "127.0.0.1:6379") }

// MySQLBaseDSN is the real server that tests create their databases on, without a database name.
func MySQLBaseDSN() string {
	return cmp.Or(os.Getenv("MONITOR_TEST_MYSQL_DSN"), "root@tcp(127.0.0.1:3306)/")
}

var (
	probeOnce          sync.Once
	redisUp, mysqlUp   bool
	redisErr, mysqlErr error
)

func probe() {
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c := redis.NewClient(&redis.Options{Addr: RedisAddr()})
		redisErr = c.Ping(ctx).Err()
		redisUp = redisErr == nil
		if err := c.Close(); err != nil && redisErr == nil {
			redisErr = err
		}
		db, err := openMySQL(MySQLBaseDSN())
		if err == nil {
			sqlDB, derr := db.DB()
			if derr == nil {
				err = sqlDB.PingContext(ctx)
				if cerr := sqlDB.Close(); cerr != nil && err == nil {
					err = cerr
				}
			} else {
				err = derr
			}
		}
		mysqlErr = err
		mysqlUp = err == nil
	})
}

// Redis is one test's Redis: a db of its own, flushed before and after the test.
type Redis struct {
	Addr   string
	DB     int
	Client *redis.Client
}

// Opt returns the asynq connection options for the test's db.
func (r *Redis) Opt() asynq.RedisClientOpt { return asynq.RedisClientOpt{Addr: r.Addr, DB: r.DB} }

// NewRedis returns a clean Redis db for t. On the real server it leases one of dbs 1-15
// with a lock key in db 0, so parallel test binaries never share a db.
func NewRedis(t testing.TB) *Redis {
	t.Helper()
	probe()
	if !redisUp {
		if Real() {
			t.Fatalf("MONITOR_TEST_REAL=1 but Redis at %s is unreachable: %v", RedisAddr(), redisErr)
		}
		standIn(t, "miniredis", "Redis at "+RedisAddr(), redisErr)
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			t.Fatalf("start miniredis: %v", err)
		}
		t.Cleanup(m.Close)
		r := &Redis{Addr: m.Addr(), Client: redis.NewClient(&redis.Options{Addr: m.Addr()})}
		t.Cleanup(func() { closeClient(t, r.Client) })
		return r
	}
	ctx := context.Background()
	lock := redis.NewClient(&redis.Options{Addr: RedisAddr()})
	defer closeClient(t, lock)
	token := randomHex()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for db := 1; db <= 15; db++ {
			key := fmt.Sprintf("monitor:testlock:%d", db)
			ok, err := lock.SetNX(ctx, key, token, 10*time.Minute).Result()
			if err != nil {
				t.Fatalf("lease redis db: %v", err)
			}
			if !ok {
				continue
			}
			r := &Redis{Addr: RedisAddr(), DB: db, Client: redis.NewClient(&redis.Options{Addr: RedisAddr(), DB: db})}
			if err := r.Client.FlushDB(ctx).Err(); err != nil {
				t.Fatalf("flush redis db %d: %v", db, err)
			}
			t.Cleanup(func() {
				if err := r.Client.FlushDB(context.Background()).Err(); err != nil {
					t.Errorf("flush redis db %d: %v", db, err)
				}
				closeClient(t, r.Client)
				release := redis.NewClient(&redis.Options{Addr: RedisAddr()})
				defer closeClient(t, release)
				if err := release.Del(context.Background(), key).Err(); err != nil {
					t.Errorf("release redis db %d: %v", db, err)
				}
			})
			return r
		}
		if time.Now().After(deadline) {
			t.Fatal("no free Redis db among 1-15 after 2m")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchEmbedded is the switch that lets benchmarks run on the embedded stand-ins.
const BenchEmbedded = "MONITOR_BENCH_EMBEDDED"

// standIn is called before t falls back to the embedded stand-in for server, which is
// unreachable with err. A benchmark fails unless BenchEmbedded=1 allows the stand-in,
// whose numbers say nothing about the real server; an allowed one says what it measures.
func standIn(t testing.TB, stand, server string, err error) {
	t.Helper()
	if _, ok := t.(*testing.B); !ok {
		return
	}
	if os.Getenv(BenchEmbedded) != "1" {
		t.Fatalf("benchmark refuses to run on %s: %s is unreachable (%v); start it, or set %s=1 to measure the embedded stand-in",
			stand, server, err, BenchEmbedded)
	}
	t.Logf("%s=1: benchmarking %s, not %s (unreachable: %v)", BenchEmbedded, stand, server, err)
}

// NewRedisClient returns a client of opt that is closed when the test ends.
func NewRedisClient(t testing.TB, opt *redis.Options) *redis.Client {
	c := redis.NewClient(opt)
	t.Cleanup(func() { closeClient(t, c) })
	return c
}

func closeClient(t testing.TB, c *redis.Client) {
	if err := c.Close(); err != nil {
		t.Errorf("close redis client: %v", err)
	}
}

func randomHex() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Database is one test's SQL database, migrated and dropped after the test.
type Database struct {
	DB *gorm.DB
	// DSN is the go-sql-driver DSN of the database, empty for SQLite.
	DSN string
	// Path is the SQLite file, empty for MySQL.
	Path string
}

// NewDB returns a freshly migrated database of its own for t.
func NewDB(t testing.TB) *Database {
	t.Helper()
	probe()
	if !mysqlUp {
		if Real() {
			t.Fatalf("MONITOR_TEST_REAL=1 but MySQL at %s is unreachable: %v", MySQLBaseDSN(), mysqlErr)
		}
		standIn(t, "SQLite", "MySQL at "+MySQLBaseDSN(), mysqlErr)
		path := filepath.Join(t.TempDir(), "monitor.db")
		db, err := gorm.Open(sqlite.Open(backend.SQLiteDSN(path)), &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		sqlDB.SetMaxOpenConns(1)
		t.Cleanup(func() {
			if err := sqlDB.Close(); err != nil {
				t.Errorf("close sqlite: %v", err)
			}
		})
		if err := model.Migrate(db, model.MigrateOptions{}); err != nil {
			t.Fatal(err)
		}
		return &Database{DB: db, Path: path}
	}
	name := "monitor_test_" + randomHex()
	admin, err := openMySQL(MySQLBaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4").Error; err != nil {
		t.Fatalf("create database: %v", err)
	}
	adminSQL, err := admin.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP DATABASE IF EXISTS " + name).Error; err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		if err := adminSQL.Close(); err != nil {
			t.Errorf("close admin connection: %v", err)
		}
	})
	mc, err := mysql.ParseDSN(MySQLBaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	mc.DBName = name
	dsn, err := backend.MySQLDSN(mc.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	return &Database{DB: OpenMySQL(t, dsn), DSN: dsn}
}

// OpenMySQL opens the MySQL database of dsn, migrates it, and closes it when the test
// ends.
func OpenMySQL(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	db, err := openMySQL(dsn)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sqlDB.Close(); err != nil {
			t.Errorf("close database: %v", err)
		}
	})
	if err := model.Migrate(db, model.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	return db
}

func openMySQL(dsn string) (*gorm.DB, error) {
	db, err := gorm.Open(gormmysql.Open(dsn), &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		return nil, fmt.Errorf("open mysql: %w", err)
	}
	return db, nil
}

// Logger returns a logger that writes through t.Log, so output shows only for failing tests.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// WaitFor polls cond every 50ms and fails t when it is still false after limit.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeAddr returns a loopback address that nothing listens on at the moment.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
