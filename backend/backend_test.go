package backend_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"go.uber.org/goleak"

	"monitor/backend"
	"monitor/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMySQLDSNForcesUTCAndInterpolation(t *testing.T) {
	got, err := backend.MySQLDSN("root:pw@tcp(127.0.0.1:3306)/monitor")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"parseTime=true", "interpolateParams=true", "charset=utf8mb4", "max_error_count=65535", "/monitor?"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %s", got, want)
		}
	}
	// An operator's own setting stays.
	if got, err := backend.MySQLDSN("root@tcp(127.0.0.1:3306)/monitor?max_error_count=100"); err != nil || !strings.Contains(got, "max_error_count=100") || strings.Contains(got, "65535") {
		t.Fatalf("max_error_count=100: %s, %v", got, err)
	}
	if _, err := backend.MySQLDSN("root@tcp(127.0.0.1:3306)/monitor?parseTime=maybe"); err == nil || !strings.Contains(err.Error(), "MONITOR_MYSQL_DSN") {
		t.Fatalf("bad DSN: err = %v", err)
	}
	// The workers use LOAD DATA LOCAL with registered readers only: a DSN that would let
	// the server fetch any local file is refused, not passed on.
	if _, err := backend.MySQLDSN("root@tcp(127.0.0.1:3306)/monitor?allowAllFiles=true"); err == nil || !strings.Contains(err.Error(), "allowAllFiles") {
		t.Fatalf("allowAllFiles=true: err = %v", err)
	}
}

func TestEmbeddedBackends(t *testing.T) {
	ctx := context.Background()
	r, err := backend.OpenRedis(ctx, backend.RedisOptions{})
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
	db, err := backend.OpenDatabase(ctx, backend.DatabaseOptions{DataDir: t.TempDir(), Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if db.Dialector.Name() != "sqlite" {
		t.Fatalf("dialect = %s", db.Dialector.Name())
	}
	if err := backend.CloseDatabase(db); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableBackendsAreErrors(t *testing.T) {
	addr := testenv.FreeAddr(t)
	if _, err := backend.OpenRedis(context.Background(), backend.RedisOptions{Addr: addr}); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("err = %v, want one naming %s", err, addr)
	}
	dsn := "root@tcp(" + testenv.FreeAddr(t) + ")/monitor"
	if _, err := backend.OpenDatabase(context.Background(), backend.DatabaseOptions{MySQLDSN: dsn, Logger: testenv.Logger(t)}); err == nil {
		t.Fatal("an unreachable MySQL must be an error")
	}
}

// TestPipelinedEnqueuesWithAsynq checks the asynq client path the API uses: Redis.Pipelined.
func TestPipelinedEnqueuesWithAsynq(t *testing.T) {
	rds := testenv.NewRedis(t)
	r, err := backend.OpenRedis(t.Context(), backend.RedisOptions{Addr: rds.Addr, DB: rds.DB})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}()
	client := asynq.NewClientFromRedisClient(r.Pipelined)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			_, err := client.EnqueueContext(t.Context(), asynq.NewTask("t", []byte(fmt.Sprint(i))),
				asynq.Queue("q"), asynq.Group(fmt.Sprint("g", i%3)))
			if err != nil {
				t.Errorf("enqueue %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	insp := asynq.NewInspectorFromRedisClient(rds.Client)
	groups, err := insp.Groups("q")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, g := range groups {
		total += g.Size
	}
	if len(groups) != 3 || total != 100 {
		t.Errorf("groups %v: want 100 tasks in 3 groups", groups)
	}
}

// TestOpenRedisTopologies: a cluster or a sentinel set that cannot work is refused
// before anything is dialled, and one that does not answer fails naming it.
func TestOpenRedisTopologies(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		opt  backend.RedisOptions
		want string
	}{
		{backend.RedisOptions{Cluster: []string{"127.0.0.1:1"}, DB: 2}, "only db 0"},
		{backend.RedisOptions{Sentinels: []string{"127.0.0.1:1"}}, "no master name"},
		{backend.RedisOptions{Cluster: []string{testenv.FreeAddr(t)}}, "redis 127.0.0.1:"},
		{backend.RedisOptions{Sentinels: []string{testenv.FreeAddr(t)}, Master: "mymaster"}, "redis mymaster@127.0.0.1:"},
	} {
		r, err := backend.OpenRedis(ctx, c.opt)
		if err == nil {
			if cerr := r.Close(); cerr != nil {
				t.Error(cerr)
			}
			t.Fatalf("%+v: opened, want an error with %q", c.opt, c.want)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opt, err, c.want)
		}
	}
}
