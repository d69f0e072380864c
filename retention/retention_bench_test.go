package retention_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"monitor/internal/testenv"
	"monitor/model"
	"monitor/retention"
)

// BenchmarkRetentionOfADay times a retention run that removes one day of 1,000,000
// reports from tb_status (beside 100,000 of today, which stay), on the real MariaDB
// (run: MONITOR_TEST_REAL=1 go test ./retention -run '^$' -bench RetentionOfADay
// -benchtime 1x -count 3 -timeout 30m), side by side:
//   - drop-partition: tb_status partitioned by day, as `monitor migrate` makes it;
//   - chunked-delete: the same table unpartitioned, deleted 5,000 rows at a time with
//     a 50 ms pause between chunks (retention.Pause), as before partitioning and as on
//     SQLite.
func BenchmarkRetentionOfADay(b *testing.B) {
	const oldRows, todayRows = 1_000_000, 100_000
	db := testenv.NewDB(b)
	if db.DSN == "" {
		testenv.Missing(b, "partitioned retention needs MySQL")
		return
	}
	ctx := context.Background()
	now := time.Now().UTC()
	old := now.AddDate(0, 0, -95)
	fill := func(b *testing.B) {
		b.Helper()
		if err := db.DB.Exec("TRUNCATE TABLE tb_status").Error; err != nil {
			b.Fatal(err)
		}
		for _, day := range []struct {
			at   time.Time
			rows int
		}{{old, oldRows}, {now, todayRows}} {
			if err := db.DB.Exec(`INSERT INTO tb_status (sn, posno, city, tyid, ndate, ntime, tenant, accepted_at)
				SELECT CONCAT('D', seq % 10000), 'P1', '0371', 'B503', ?, SEC_TO_TIME(seq DIV 10000 * 60), 1, ?
				FROM seq_0_to_`+itoa(day.rows-1), day.at.Format(time.DateOnly), day.at).Error; err != nil {
				b.Fatal(err)
			}
		}
	}
	job, err := retention.New(db.DB, retention.Options{LogDir: b.TempDir(), Keep: retention.Days{Status: 90, Alerts: 90, Commands: 30, Logs: 30},
		Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, partitioned bool) {
		for b.Loop() {
			b.StopTimer()
			fill(b)
			b.StartTimer()
			if _, err := job.Run(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			var left int64
			if err := db.DB.Raw("SELECT COUNT(*) FROM tb_status").Scan(&left).Error; err != nil || left != todayRows {
				b.Fatalf("%d rows left (%v), want today's %d", left, err, todayRows)
			}
			if partitioned {
				// A new table, whose oldest partition again holds the old day.
				if err := db.DB.Migrator().DropTable("tb_status"); err != nil {
					b.Fatal(err)
				}
				if err := model.Migrate(db.DB, model.MigrateOptions{Now: func() time.Time { return now }}); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
		}
	}
	b.Run("drop-partition", func(b *testing.B) { run(b, true) })
	if err := db.DB.Exec("ALTER TABLE tb_status REMOVE PARTITIONING").Error; err != nil {
		b.Fatal(err)
	}
	b.Run("chunked-delete", func(b *testing.B) { run(b, false) })
}

func itoa(n int) string { return strconv.Itoa(n) }
