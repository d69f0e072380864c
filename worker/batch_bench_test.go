package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"monitor/internal/testenv"
	"monitor/model"
)

// BenchmarkInsertStatus measures building one full-size tb_status INSERT (statement and
// arguments) for MySQL.
func BenchmarkInsertStatus(b *testing.B) {
	reports := make([]model.Report, rowsPerStatement)
	for i := range reports {
		reports[i] = model.Report{SN: fmt.Sprintf("SN%06d", i), Pos: "12345678", City: "0371", Type: "B503",
			NDate: "2021-08-07", NTime: "18:30:30", Line: 101, STime: "05:01:01", CTime: "18:30:20", AcceptedAt: time.Now()}
	}
	d := dialect{mysql: true}
	b.ReportAllocs()
	for b.Loop() {
		d.insertStatus(reports)
	}
}

// BenchmarkWrite measures writing a batch of 1,000 new reports of 1,000 devices, dated
// today, into the test database (tb_status INSERT and devices upsert in one
// transaction): ns/op per batch. On MySQL it runs twice, side by side: on tb_status as
// `monitor migrate` makes it (partitioned by day, 99 partitions) and on the same table
// unpartitioned, as before issue 10 (run: MONITOR_TEST_REAL=1 go test ./worker -run '^$'
// -bench Write -count 5).
func BenchmarkWrite(b *testing.B) {
	b.Run("partitioned", func(b *testing.B) { benchmarkWrite(b, false) })
	b.Run("unpartitioned", func(b *testing.B) { benchmarkWrite(b, true) })
}

func benchmarkWrite(b *testing.B, unpartitioned bool) {
	db := testenv.NewDB(b).DB
	if unpartitioned {
		if db.Dialector.Name() != "mysql" {
			b.Skip("SQLite has no partitions")
		}
		if err := db.Exec("ALTER TABLE tb_status REMOVE PARTITIONING").Error; err != nil {
			b.Fatal(err)
		}
	}
	w := NewBatchWriter(db, testenv.Logger(b))
	// Only Write is timed: each batch is copied from the template and given its own
	// report time (so every report is new) with the timer stopped. Write sorts its input
	// in place, so the template itself is never handed to it.
	template := make([]model.Report, 1000)
	for i := range template {
		template[i] = model.Report{SN: fmt.Sprintf("SN%06d", i), Pos: "12345678", City: "0371", Type: "B503", Line: 101}
	}
	reports := make([]model.Report, len(template))
	start := time.Now().UTC().Truncate(24 * time.Hour)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		at := start.Add(time.Duration(n) * time.Second)
		n++
		copy(reports, template)
		date, clock, accepted := at.Format(time.DateOnly), at.Format(time.TimeOnly), time.Now()
		for i := range reports {
			reports[i].NDate, reports[i].NTime, reports[i].AcceptedAt = date, clock, accepted
		}
		b.StartTimer()
		inserted, err := w.Write(context.Background(), reports)
		if err != nil {
			b.Fatal(err)
		}
		if inserted != int64(len(reports)) {
			b.Fatalf("batch %d inserted %d of %d new reports", n, inserted, len(reports))
		}
	}
}
