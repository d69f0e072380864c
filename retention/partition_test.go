package retention_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"monitor/internal/testenv"
	"monitor/model"
	"monitor/retention"
	"monitor/worker"
)

// partitionNames returns tb_status's partitions from information_schema, in order.
func partitionNames(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	var names []string
	if err := db.Raw(`SELECT PARTITION_NAME FROM information_schema.PARTITIONS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tb_status' ORDER BY PARTITION_ORDINAL_POSITION`).
		Scan(&names).Error; err != nil {
		t.Fatal(err)
	}
	return names
}

// dailyNames returns the names of the daily partitions from first to last, then pfuture.
func dailyNames(first, last time.Time) []string {
	var out []string
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		out = append(out, "p"+d.Format("20060102"))
	}
	return append(out, "pfuture")
}

// TestPartitionedHistory stores reports dated today, 100 days ago and 5 years ahead
// through the batch writer, twice each, and checks each is stored once; then a retention
// of 90 days drops the old day's partition (200,000 rows) without touching the others,
// and creates the partitions of the days ahead.
func TestPartitionedHistory(t *testing.T) {
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "partitioned history needs MySQL")
		return
	}
	ctx := context.Background()
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)

	// Migrate made one partition a day from 91 days back (holding every older date) to
	// 7 days ahead, and the catch-all of later dates.
	if got, want := partitionNames(t, db.DB), dailyNames(today.AddDate(0, 0, -91), today.AddDate(0, 0, 7)); !slices.Equal(got, want) {
		t.Fatalf("partitions after migrate:\n got %v\nwant %v", got, want)
	}
	var method string
	if err := db.DB.Raw(`SELECT DISTINCT PARTITION_METHOD FROM information_schema.PARTITIONS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tb_status'`).Scan(&method).Error; err != nil || method != "RANGE COLUMNS" {
		t.Fatalf("partition method %q (%v), want RANGE COLUMNS", method, err)
	}

	dates := map[string]string{
		"today":  today.Format(time.DateOnly),
		"old":    today.AddDate(0, 0, -100).Format(time.DateOnly),
		"future": today.AddDate(5, 0, 0).Format(time.DateOnly),
	}
	w := worker.NewBatchWriter(db.DB, testenv.Logger(t))
	var reports []model.Report
	for _, which := range []string{"today", "old", "future"} {
		for i := range 3 {
			reports = append(reports, model.Report{SN: "T-" + which, City: "0371", Type: "B503", Tenant: 1,
				NDate: dates[which], NTime: fmt.Sprintf("08:00:%02d", i), AcceptedAt: now})
		}
	}
	for round := range 2 { // the second round is a re-delivered batch
		if _, err := w.Write(ctx, slices.Clone(reports)); err != nil {
			t.Fatalf("write round %d: %v", round, err)
		}
	}
	perDate := func() map[string]int64 {
		var rows []struct {
			NDate string `gorm:"column:ndate"`
			N     int64
		}
		if err := db.DB.Raw("SELECT ndate, COUNT(*) AS n FROM tb_status WHERE sn LIKE 'T-%' GROUP BY ndate").Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, r := range rows {
			out[r.NDate] = r.N
		}
		return out
	}
	if got := perDate(); len(got) != 3 || got[dates["today"]] != 3 || got[dates["old"]] != 3 || got[dates["future"]] != 3 {
		t.Fatalf("rows per date %v, want 3 of each of %v", got, dates)
	}
	var inFuture int64
	if err := db.DB.Raw("SELECT COUNT(*) FROM tb_status PARTITION (pfuture)").Scan(&inFuture).Error; err != nil || inFuture != 3 {
		t.Fatalf("pfuture holds %d rows (%v), want the 3 dated 5 years ahead", inFuture, err)
	}

	// 200,000 more rows on the old day. Deleting them row by row would add 200,000 to the
	// server's Handler_delete; dropping their partition adds nothing (other tests delete
	// far fewer rows meanwhile).
	if err := db.DB.Exec(`INSERT INTO tb_status (sn, ndate, ntime, accepted_at)
		SELECT CONCAT('BULK', seq % 1000), ?, SEC_TO_TIME(seq DIV 1000), ? FROM seq_1_to_200000`,
		dates["old"], now.AddDate(0, 0, -100)).Error; err != nil {
		t.Fatal(err)
	}

	// A day later than migrate: the run also creates the partition 8 days ahead.
	later := now.Add(24 * time.Hour)
	job, err := retention.New(db.DB, retention.Options{LogDir: t.TempDir(), Keep: retention.Days{Status: 90, Alerts: 90, Commands: 30, Logs: 30},
		Logger: testenv.Logger(t), Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	handlerDelete := func() int64 {
		t.Helper()
		var name string
		var n int64
		if err := db.DB.Raw("SHOW GLOBAL STATUS LIKE 'Handler_delete'").Row().Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := handlerDelete()
	start := time.Now()
	d, err := job.Run(ctx)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("retention run dropping 200,003 rows took %v", took)
	if n := handlerDelete() - before; n >= 200_000 {
		t.Errorf("the retention run deleted %d rows one by one: the old day was not dropped as a partition", n)
	}
	// The two oldest days (91 and 90 days before the run's day) are past 90 days.
	if d.StatusPartitions != 2 || d.Status != 0 {
		t.Errorf("deleted %+v, want 2 partitions and no row deleted one by one", d)
	}
	if got := perDate(); len(got) != 2 || got[dates["today"]] != 3 || got[dates["future"]] != 3 {
		t.Errorf("after retention rows per date %v, want today's and the future's 3 each", got)
	}
	var bulk int64
	if err := db.DB.Raw("SELECT COUNT(*) FROM tb_status WHERE sn LIKE 'BULK%'").Scan(&bulk).Error; err != nil || bulk != 0 {
		t.Errorf("%d bulk rows of the old day remain (%v)", bulk, err)
	}
	if got, want := partitionNames(t, db.DB), dailyNames(today.AddDate(0, 0, -89), today.AddDate(0, 0, 8)); !slices.Equal(got, want) {
		t.Errorf("partitions after retention:\n got %v\nwant %v", got, want)
	}

	// A report dated long ago arriving now lands in the oldest partition, stored once.
	late := model.Report{SN: "T-late", NDate: "2019-01-01", NTime: "00:00:00", AcceptedAt: later}
	for range 2 {
		if _, err := w.Write(ctx, []model.Report{late}); err != nil {
			t.Fatal(err)
		}
	}
	var lateRows int64
	if err := db.DB.Raw("SELECT COUNT(*) FROM tb_status PARTITION (p" + today.AddDate(0, 0, -89).Format("20060102") + ") WHERE sn = 'T-late'").
		Scan(&lateRows).Error; err != nil || lateRows != 1 {
		t.Errorf("the report dated 2019 is in the oldest partition %d times (%v), want once", lateRows, err)
	}

	// The future-dated reports stay until they were accepted 90 days ago, then go.
	muchLater := now.AddDate(0, 0, 91)
	job, err = retention.New(db.DB, retention.Options{LogDir: t.TempDir(), Keep: retention.Days{Status: 90, Alerts: 90, Commands: 30, Logs: 30},
		Logger: testenv.Logger(t), Now: func() time.Time { return muchLater }})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if d.Status != 3 {
		t.Errorf("91 days on, deleted %+v, want the 3 future-dated rows", d)
	}
	if got := perDate(); len(got) != 0 {
		t.Errorf("91 days on rows per date %v, want none", got)
	}
}
