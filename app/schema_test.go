package app

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"monitor/internal/testenv"
	"monitor/model"
)

// TestRolesRefuseAMissingSchema starts `monitor api` and `monitor worker` against a
// MySQL database that `monitor migrate` never ran on, and against one a newer build
// migrated: each fails at start naming what to do, and leaves nothing listening.
func TestRolesRefuseAMissingSchema(t *testing.T) {
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "the roles other than all need a MySQL database")
		return
	}
	rdb := testenv.NewRedis(t)
	if rdb.Addr != testenv.RedisAddr() {
		testenv.Missing(t, "the roles other than all need a real Redis")
		return
	}
	for _, table := range []string{"schema_version", "tb_status", "devices", "alerts", "commands", "logs"} {
		if err := db.DB.Migrator().DropTable(table); err != nil {
			t.Fatal(err)
		}
	}
	run := func(role string) (error, string, string) {
		t.Helper()
		before := goleak.IgnoreCurrent()
		addr := testenv.FreeAddr(t)
		env := []string{"MONITOR_MYSQL_DSN=" + db.DSN, "MONITOR_REDIS_ADDR=" + rdb.Addr, "MONITOR_REDIS_DB=" + strconv.Itoa(rdb.DB),
			"MONITOR_OPERATOR_TOKEN=schema-test-operator-token", "MONITOR_HTTP_ADDR=" + addr}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var stderr testenv.SyncBuffer
		err := Run(ctx, []string{role}, env, &bytes.Buffer{}, &stderr)
		if c, derr := net.DialTimeout("tcp", addr, time.Second); derr == nil {
			c.Close()
			t.Errorf("monitor %s: something still listens on %s after Run returned", role, addr)
		}
		goleak.VerifyNone(t, before)
		return err, addr, stderr.String()
	}
	for _, role := range []string{"api", "worker"} {
		err, _, stderr := run(role)
		if err == nil || !strings.Contains(err.Error(), "monitor migrate") || !strings.Contains(err.Error(), "no monitor schema") {
			t.Errorf("monitor %s on an empty database: Run = %v, want an error naming `monitor migrate`\n%s", role, err, stderr)
		}
	}

	if err := model.Migrate(db.DB, model.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := db.DB.Exec("UPDATE schema_version SET version = ?", model.SchemaVersion+1).Error; err != nil {
		t.Fatal(err)
	}
	want := "schema version " + strconv.Itoa(model.SchemaVersion+1)
	for _, role := range []string{"api", "worker"} {
		err, _, stderr := run(role)
		if err == nil || !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), want) {
			t.Errorf("monitor %s on a newer schema: Run = %v, want an error naming the newer %s\n%s", role, err, want, stderr)
		}
	}
}
