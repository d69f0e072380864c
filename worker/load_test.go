package worker

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"monitor/backend"
	"monitor/internal/testenv"
	"monitor/model"

	"github.com/go-sql-driver/mysql"
)

// TestWritesWithInsertsWhereLoadDataIsRefused runs the batch writer against a MariaDB of
// its own started with --local-infile=0, as MySQL 8 is by default: the first write finds
// LOAD DATA LOCAL refused, says so once in the log, and stores the batch with INSERTs;
// later writes go straight to the INSERTs. Nothing is lost or stored twice on the way.
func TestWritesWithInsertsWhereLoadDataIsRefused(t *testing.T) {
	dsn, err := backend.MySQLDSN(testenv.InstallMariaDB(t, "--local-infile=0").Run(t, "monitor"))
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.OpenMySQL(t, dsn)
	var logs bytes.Buffer
	w := NewBatchWriter(db, slog.New(slog.NewTextHandler(&logs, nil)))
	now := time.Now()
	first := []model.Report{report("R1", "10:00:00", now), report("R2", "10:00:00", now)}
	if n, err := w.Write(context.Background(), first); err != nil || n != 2 {
		t.Fatalf("first write: %d new, %v; want 2", n, err)
	}
	if !w.noLoad.Load() {
		t.Fatal("the writer still tries LOAD DATA after the server refused it")
	}
	if got := strings.Count(logs.String(), "msg=\"the database refuses LOAD DATA LOCAL"); got != 1 {
		t.Fatalf("the refusal is logged %d times, want once:\n%s", got, logs.String())
	}
	// R2 again, re-delivered, beside a new report of R1.
	second := []model.Report{report("R2", "10:00:00", now), report("R1", "10:05:00", now.Add(time.Minute))}
	if n, err := w.Write(context.Background(), second); err != nil || n != 1 {
		t.Fatalf("second write: %d new, %v; want 1", n, err)
	}
	if got := strings.Count(logs.String(), "msg=\"the database refuses LOAD DATA LOCAL"); got != 1 {
		t.Fatalf("the refusal is logged %d times, want once", got)
	}
	if n := count(t, db, "tb_status"); n != 3 {
		t.Fatalf("tb_status holds %d rows, want 3", n)
	}
	if d := device(t, db, "R1"); d.NTime != "10:05:00" {
		t.Fatalf("device R1 at %s, want its newest report 10:05:00", d.NTime)
	}
}

// TestARowTheDatabaseSkipsFailsTheWrite: LOAD DATA LOCAL skips a row it cannot store with
// a warning instead of an error. Without its catch-all partition tb_status has no place
// for a report dated 2099: the write must fail and store nothing, as the INSERT does,
// while a duplicate alone (skipped too) is no failure.
func TestARowTheDatabaseSkipsFailsTheWrite(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		tdb := newMySQLDB(t, "SQLite has no partitions")
		w := mode.writer(tdb.DB, testenv.Logger(t))
		now := time.Now()
		stored := report("P1", "10:00:00", now)
		if _, err := w.Write(context.Background(), []model.Report{stored}); err != nil {
			t.Fatal(err)
		}
		if n, err := w.Write(context.Background(), []model.Report{stored}); err != nil || n != 0 {
			t.Fatalf("a duplicate alone: %d new, %v; want 0 and no error", n, err)
		}
		if err := tdb.DB.Exec("ALTER TABLE tb_status DROP PARTITION pfuture").Error; err != nil {
			t.Fatal(err)
		}
		future := report("P2", "10:00:00", now)
		future.NDate = "2099-01-01"
		n, err := w.Write(context.Background(), []model.Report{report("P3", "10:00:00", now), stored, future})
		if err == nil {
			t.Fatalf("a report with no partition: %d new and no error", n)
		}
		t.Log(err)
		if n := count(t, tdb.DB, "tb_status"); n != 1 {
			t.Fatalf("tb_status holds %d rows after the failed write, want 1", n)
		}
	})
}

// TestASkippedRowBehindManyDuplicatesFailsTheWrite hides the skipped row of
// TestARowTheDatabaseSkipsFailsTheWrite behind 100 duplicates: the write must still fail
// and store nothing. With max_error_count as backend.MySQLDSN sets it the load's warnings
// show the row; with the server's default of 64 they do not, and the batch is written
// again with INSERTs, which refuse it. A batch delivered again in full, 100 duplicates and
// nothing else, is stored as nothing new without an error either way, and stays on
// LOAD DATA where the warnings show every row.
func TestASkippedRowBehindManyDuplicatesFailsTheWrite(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		for _, kept := range []string{"", "64"} {
			t.Run("max_error_count="+cmp.Or(kept, "as set"), func(t *testing.T) {
				tdb := newMySQLDB(t, "SQLite has no partitions")
				db := tdb.DB
				if kept != "" {
					cfg, err := mysql.ParseDSN(tdb.DSN)
					if err != nil {
						t.Fatal(err)
					}
					cfg.Params["max_error_count"] = kept
					db = testenv.OpenMySQL(t, cfg.FormatDSN())
				}
				var logs bytes.Buffer
				w := mode.writer(db, slog.New(slog.NewTextHandler(&logs, nil)))
				now := time.Now()
				var stored []model.Report
				for i := range 100 {
					stored = append(stored, report(fmt.Sprintf("D%03d", i), "10:00:00", now))
				}
				if n, err := w.Write(context.Background(), stored); err != nil || n != 100 {
					t.Fatalf("first delivery: %d new, %v; want 100", n, err)
				}
				if n, err := w.Write(context.Background(), stored); err != nil || n != 0 {
					t.Fatalf("the batch again: %d new, %v; want 0 and no error", n, err)
				}
				again := strings.Contains(logs.String(), "writing a batch again with INSERTs")
				if want := !mode.noLoad && kept != ""; again != want {
					t.Errorf("the batch delivered again was written again with INSERTs: %v, want %v\n%s", again, want, &logs)
				}
				if err := db.Exec("ALTER TABLE tb_status DROP PARTITION pfuture").Error; err != nil {
					t.Fatal(err)
				}
				future := report("F1", "10:00:00", now)
				future.NDate = "2099-01-01"
				n, err := w.Write(context.Background(), append(slices.Clone(stored), future))
				if err == nil {
					t.Fatalf("a report with no partition behind 100 duplicates: %d new and no error", n)
				}
				want := "insert tb_status: Error 1526"
				if !mode.noLoad && kept == "" {
					want = "load tb_status: 0 of 101 rows stored: Warning 1526"
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q, want it to say %q", err, want)
				}
				if n := count(t, db, "tb_status"); n != 100 {
					t.Fatalf("tb_status holds %d rows after the failed write, want 100", n)
				}
			})
		}
	})
}

// TestWritesWithInsertsWithoutTheStagingTable writes as an account that may read and
// write the tables but not create temporary tables, as a least-privilege account may
// be: the staging table of devices is refused, and the writer falls back to INSERTs as
// for a refused LOAD DATA, rather than failing every batch.
func TestWritesWithInsertsWithoutTheStagingTable(t *testing.T) {
	tdb := newMySQLDB(t, "the staging table needs a real MySQL")
	cfg, err := mysql.ParseDSN(tdb.DSN)
	if err != nil {
		t.Fatal(err)
	}
	user := "np_" + strings.TrimPrefix(cfg.DBName, "monitor_test_")
	for _, q := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'np-password'",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON " + cfg.DBName + ".* TO '" + user + "'@'%'",
	} {
		if err := tdb.DB.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if err := tdb.DB.Exec("DROP USER '" + user + "'@'%'").Error; err != nil {
			t.Error(err)
		}
	})
	cfg.User, cfg.Passwd = user, "np-password"
	db, err := backend.OpenDatabase(t.Context(), backend.DatabaseOptions{MySQLDSN: cfg.FormatDSN()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := backend.CloseDatabase(db); err != nil {
			t.Error(err)
		}
	})
	var logs bytes.Buffer
	w := NewBatchWriter(db, slog.New(slog.NewTextHandler(&logs, nil)))
	if n, err := w.Write(context.Background(), []model.Report{report("U1", "10:00:00", time.Now())}); err != nil || n != 1 {
		t.Fatalf("write: %d new, %v; want 1", n, err)
	}
	if !w.noLoad.Load() || !strings.Contains(logs.String(), "create "+stageDevices) {
		t.Fatalf("the refused staging table is not what the fallback logged:\n%s", logs.String())
	}
	t.Log(logs.String())
	if n := count(t, tdb.DB, "tb_status"); n != 1 {
		t.Fatalf("tb_status holds %d rows, want 1", n)
	}
	if d := device(t, tdb.DB, "U1"); d.NTime != "10:00:00" {
		t.Fatalf("device U1 at %q", d.NTime)
	}
}
