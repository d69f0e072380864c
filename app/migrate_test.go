package app

import (
	"bytes"
	"context"
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
