package model_test

import (
	"testing"

	"monitor/internal/testenv"
	"monitor/model"
)

// BenchmarkPartitionConversion times `monitor migrate` partitioning an existing,
// unpartitioned tb_status of 1,000,000 reports over 30 days by day, on the real MariaDB
// (run: MONITOR_TEST_REAL=1 go test ./model -run '^$' -bench PartitionConversion
// -benchtime 1x -count 3 -timeout 30m). MySQL copies the table, so the time grows with
// its rows, and writes to tb_status wait meanwhile.
func BenchmarkPartitionConversion(b *testing.B) {
	const rows = 1_000_000
	db := testenv.NewDB(b)
	if db.DSN == "" {
		testenv.Missing(b, "partitioning needs MySQL")
		return
	}
	for b.Loop() {
		b.StopTimer()
		if err := db.DB.Migrator().DropTable("tb_status"); err != nil {
			b.Fatal(err)
		}
		if err := db.DB.Set("gorm:table_options", "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin").AutoMigrate(&model.Status{}); err != nil {
			b.Fatal(err)
		}
		if err := db.DB.Exec(`INSERT INTO tb_status (sn, posno, city, tyid, ndate, ntime, tenant, accepted_at)
			SELECT CONCAT('D', seq % 10000), 'P1', '0371', 'B503',
			       DATE_FORMAT(UTC_DATE() - INTERVAL (seq DIV 10000) % 30 DAY, '%Y-%m-%d'),
			       SEC_TO_TIME(seq DIV 10000 DIV 30 * 60), 1, UTC_TIMESTAMP(6)
			FROM seq_0_to_999999`).Error; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := model.Migrate(db.DB, model.MigrateOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		var n int64
		if err := db.DB.Raw("SELECT COUNT(*) FROM tb_status").Scan(&n).Error; err != nil || n != rows {
			b.Fatalf("%d rows after the conversion (%v), want %d", n, err, rows)
		}
		b.StartTimer()
	}
}
