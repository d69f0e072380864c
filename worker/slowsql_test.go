package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"monitor/internal/sqllog"
	"monitor/internal/testenv"
)

// TestSlowStatementsAreLoggedWithoutArguments: with a threshold every statement passes,
// the batch's INSERTs (run past GORM) and a GORM query are each logged once as slow SQL
// with their duration and placeholders, never a value of the report.
func TestSlowStatementsAreLoggedWithoutArguments(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, nil))
		tdb := testenv.NewDB(t)
		db := tdb.DB.Session(&gorm.Session{Logger: sqllog.New(log, time.Nanosecond)})
		w := mode.writer(db, log)
		const secretSN = "SECRETSN1"
		if err := w.ProcessTask(context.Background(), batchOf(report(secretSN, "18:30:30", time.Now()))); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := db.Table("tb_status").Where("sn = ?", secretSN).Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("stored %d, %v", n, err)
		}
		var statements []string
		for line := range strings.Lines(buf.String()) {
			var l struct {
				Msg, SQL  string
				Duration  int64
				Component string
			}
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			if strings.Contains(line, secretSN) {
				t.Errorf("a log line shows an argument: %s", line)
			}
			if l.Msg == "slow sql" && l.Component == "sql" && l.Duration > 0 {
				statements = append(statements, l.SQL)
			}
		}
		want := []string{"INSERT INTO tb_status (", "INSERT INTO devices (", "SELECT count(*) FROM `tb_status` WHERE sn = ?"}
		if !mode.noLoad && tdb.DSN != "" {
			want = []string{"LOAD DATA LOCAL INFILE 'Reader::monitor-load-", "CREATE TEMPORARY TABLE IF NOT EXISTS " + stageDevices,
				"DELETE FROM " + stageDevices, "LOAD DATA LOCAL INFILE 'Reader::monitor-load-", "INSERT INTO devices (",
				"SELECT count(*) FROM `tb_status` WHERE sn = ?"}
		}
		if len(statements) != len(want) {
			t.Fatalf("slow statements logged: %q, want %d", statements, len(want))
		}
		for i, prefix := range want {
			if !strings.HasPrefix(strings.ReplaceAll(statements[i], `"`, "`"), prefix) {
				t.Errorf("statement %d: %q, want it to start %q", i, statements[i], prefix)
			}
		}
	})
}
