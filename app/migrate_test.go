package app

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"monitor/internal/testenv"
	"monitor/model"
)

// TestMigrateConvertsCaseInsensitiveTables builds the schema an older version left on
// MySQL (tables in a case-insensitive collation), runs `monitor migrate`, and checks
// that two sn differing only in case are then two devices with two histories.
func TestMigrateConvertsCaseInsensitiveTables(t *testing.T) {
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "the collation conversion needs MySQL")
		return
	}
	for _, table := range []string{"tb_status", "devices", "alerts", "commands", "logs"} {
		if err := db.DB.Exec("ALTER TABLE " + table + " CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci").Error; err != nil {
			t.Fatal(err)
		}
	}
	// The old schema really merges the two: the second device is a duplicate key.
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := db.DB.Create(&model.Device{SN: "ab12", FirstSeen: now, LastSeen: now}).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.DB.Create(&model.Device{SN: "AB12", FirstSeen: now, LastSeen: now}).Error; err == nil {
		t.Fatal("the case-insensitive schema stored AB12 beside ab12; the test's old schema is wrong")
	}

	var stderr bytes.Buffer
	env := []string{"MONITOR_MYSQL_DSN=" + db.DSN, "MONITOR_OPERATOR_TOKEN=migrate-test-operator-token"}
	if err := Run(context.Background(), []string{"migrate"}, env, &bytes.Buffer{}, &stderr); err != nil {
		t.Fatalf("monitor migrate: %v\n%s", err, stderr.String())
	}

	if err := db.DB.Create(&model.Device{SN: "AB12", FirstSeen: now, LastSeen: now}).Error; err != nil {
		t.Fatalf("after migrate, AB12 beside ab12: %v", err)
	}
	for _, sn := range []string{"ab12", "AB12"} {
		r := model.Status{SN: sn, NDate: "2026-03-01", NTime: "08:00:00", AcceptedAt: now}
		if err := db.DB.Create(&r).Error; err != nil {
			t.Fatalf("report of %s: %v", sn, err)
		}
	}
	for table, want := range map[string]int64{"devices": 2, "tb_status": 2} {
		var n int64
		if err := db.DB.Table(table).Where("sn IN ?", []string{"ab12", "AB12"}).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s holds %d rows for ab12 and AB12, want %d", table, n, want)
		}
	}
	var stale int64
	if err := db.DB.Raw(`SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
		AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME <> 'utf8mb4_bin'`).Scan(&stale).Error; err != nil {
		t.Fatal(err)
	}
	if stale != 0 {
		t.Errorf("%d text columns are still not utf8mb4_bin", stale)
	}
}

// TestMigrateAddsNotifiedAt: an alerts table from before MONITOR_ALERT_REPEAT_EVERY
// gets the notified_at column, NULL on the rows already there.
func TestMigrateAddsNotifiedAt(t *testing.T) {
	db := testenv.NewDB(t).DB
	if err := db.Migrator().DropColumn(&model.Alert{}, "notified_at"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := db.Exec("INSERT INTO alerts (kind, sn, state, starts_at) VALUES (?, ?, ?, ?)",
		model.AlertOffline, "OLD", model.AlertFiring, now).Error; err != nil {
		t.Fatal(err)
	}
	if err := model.Migrate(db, model.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !db.Migrator().HasColumn(&model.Alert{}, "notified_at") {
		t.Fatal("no notified_at after migrate")
	}
	var a model.Alert
	if err := db.Where("sn = ?", "OLD").First(&a).Error; err != nil {
		t.Fatal(err)
	}
	if a.NotifiedAt != nil {
		t.Fatalf("old alert notified at %v, want NULL", a.NotifiedAt)
	}
}

// TestMigratePartitionsAnExistingHistory builds the unpartitioned tb_status of schema
// version 1 holding 1,000,000 reports over 30 days, runs `monitor migrate`, and checks
// that tb_status is then partitioned by day and keeps every row, unchanged.
func TestMigratePartitionsAnExistingHistory(t *testing.T) {
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "partitioning needs MySQL")
		return
	}
	const rows = 1_000_000
	if err := db.DB.Migrator().DropTable("tb_status"); err != nil {
		t.Fatal(err)
	}
	if err := db.DB.Set("gorm:table_options", "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin").AutoMigrate(&model.Status{}); err != nil {
		t.Fatal(err)
	}
	if err := db.DB.Exec("UPDATE schema_version SET version = 1").Error; err != nil {
		t.Fatal(err)
	}
	// 10,000 devices, each with 100 reports over the last 30 days; one row dated 2001
	// (a broken clock) that goes to the oldest partition.
	start := time.Now()
	if err := db.DB.Exec(`INSERT INTO tb_status (sn, posno, city, tyid, unum1, ndate, ntime, tenant, accepted_at)
		SELECT CONCAT('D', seq % 10000), 'P1', '0371', 'B503', seq % 7,
		       DATE_FORMAT(UTC_DATE() - INTERVAL (seq DIV 10000) % 30 DAY, '%Y-%m-%d'),
		       SEC_TO_TIME(seq DIV 10000 DIV 30 * 60), 1, UTC_TIMESTAMP(6)
		FROM seq_0_to_` + strconv.Itoa(rows-2)).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.DB.Exec(`INSERT INTO tb_status (sn, ndate, ntime, accepted_at) VALUES ('BROKEN', '2001-01-01', '00:00:00', UTC_TIMESTAMP(6))`).Error; err != nil {
		t.Fatal(err)
	}
	t.Logf("inserted %d rows in %v", rows, time.Since(start))
	// A fingerprint of every row: count and sums of CRC32 of each row's columns.
	const fingerprint = `SELECT COUNT(*) AS n, SUM(CRC32(CONCAT_WS('|', id, sn, posno, city, tyid, unum1, unum2, ndate, ntime,
		amount, count, line, stime, ctime, tenant, accepted_at))) AS crc FROM tb_status`
	type print struct {
		N   int64
		CRC int64 `gorm:"column:crc"`
	}
	var before, after print
	if err := db.DB.Raw(fingerprint).Scan(&before).Error; err != nil || before.N != rows {
		t.Fatalf("before migrate %+v (%v), want %d rows", before, err, rows)
	}

	var stderr bytes.Buffer
	env := []string{"MONITOR_MYSQL_DSN=" + db.DSN, "MONITOR_OPERATOR_TOKEN=migrate-test-operator-token", "MONITOR_RETENTION_DAYS=90"}
	start = time.Now()
	if err := Run(context.Background(), []string{"migrate"}, env, &bytes.Buffer{}, &stderr); err != nil {
		t.Fatalf("monitor migrate: %v\n%s", err, stderr.String())
	}
	t.Logf("monitor migrate partitioned %d rows in %v", rows, time.Since(start))

	if err := db.DB.Raw(fingerprint).Scan(&after).Error; err != nil || after != before {
		t.Fatalf("after migrate %+v (%v), want %+v", after, err, before)
	}
	var parts []struct {
		Name string `gorm:"column:PARTITION_NAME"`
		Rows int64  `gorm:"column:TABLE_ROWS"`
	}
	if err := db.DB.Raw(`SELECT PARTITION_NAME, TABLE_ROWS FROM information_schema.PARTITIONS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tb_status' ORDER BY PARTITION_ORDINAL_POSITION`).Scan(&parts).Error; err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC()
	first, last := "p"+today.AddDate(0, 0, -91).Format("20060102"), "p"+today.AddDate(0, 0, 7).Format("20060102")
	if len(parts) != 91+1+7+1 || parts[0].Name != first || parts[len(parts)-2].Name != last || parts[len(parts)-1].Name != "pfuture" {
		names := make([]string, len(parts))
		for i, p := range parts {
			names[i] = p.Name
		}
		t.Fatalf("partitions %v, want daily %s…%s and pfuture", names, first, last)
	}
	// Each of the last 30 days holds its 33,333 or so reports, counted exactly.
	var perDay []int64
	if err := db.DB.Raw("SELECT COUNT(*) FROM tb_status WHERE sn <> 'BROKEN' GROUP BY ndate").Scan(&perDay).Error; err != nil {
		t.Fatal(err)
	}
	if len(perDay) != 30 {
		t.Errorf("reports on %d days, want 30", len(perDay))
	}
	var broken int64
	if err := db.DB.Raw("SELECT COUNT(*) FROM tb_status PARTITION (" + first + ") WHERE sn = 'BROKEN'").Scan(&broken).Error; err != nil || broken != 1 {
		t.Errorf("the report dated 2001 is %d times in the oldest partition (%v), want once", broken, err)
	}
	if err := model.CheckSchema(db.DB); err != nil {
		t.Errorf("after migrate: %v", err)
	}
}
