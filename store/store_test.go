package store_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"monitor/config"
	"monitor/internal/testenv"
	"monitor/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMySQLDSNForcesUTCAndInterpolation(t *testing.T) {
	got, err := store.MySQLDSN("root:pw@tcp(127.0.0.1:3306)/monitor")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"parseTime=true", "interpolateParams=true", "charset=utf8mb4", "/monitor?"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %s", got, want)
		}
	}
	if _, err := store.MySQLDSN("root@tcp(127.0.0.1:3306)/monitor?parseTime=maybe"); err == nil || !strings.Contains(err.Error(), "MONITOR_MYSQL_DSN") {
		t.Fatalf("bad DSN: err = %v", err)
	}
}

func TestEmbeddedBackends(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	ctx := context.Background()
	r, err := store.OpenRedis(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Embedded() {
		t.Fatal("empty MONITOR_REDIS_ADDR must give the embedded Redis")
	}
	if err := r.Client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenDB(ctx, cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if db.Dialector.Name() != "sqlite" {
		t.Fatalf("dialect = %s", db.Dialector.Name())
	}
	if err := store.CloseDB(db); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableBackendsAreErrors(t *testing.T) {
	cfg := config.Default()
	cfg.RedisAddr = testenv.FreeAddr(t)
	if _, err := store.OpenRedis(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), cfg.RedisAddr) {
		t.Fatalf("err = %v, want one naming %s", err, cfg.RedisAddr)
	}
	cfg.MySQLDSN = "root@tcp(" + testenv.FreeAddr(t) + ")/monitor"
	if _, err := store.OpenDB(context.Background(), cfg, testenv.Logger(t)); err == nil {
		t.Fatal("an unreachable MySQL must be an error")
	}
}
