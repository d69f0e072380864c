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

// BenchmarkWrite measures writing a batch of 1,000 new reports of 1,000 devices into the
// test database (tb_status INSERT and devices upsert in one transaction): ns/op per batch.
func BenchmarkWrite(b *testing.B) {
	db := testenv.NewDB(b).DB
	w := NewBatchWriter(db, testenv.Logger(b))
	// Only Write is timed: each batch is copied from the template and given its own
	// report time (so every report is new) with the timer stopped. Write sorts its input
	// in place, so the template itself is never handed to it.
	template := make([]model.Report, 1000)
	for i := range template {
		template[i] = model.Report{SN: fmt.Sprintf("SN%06d", i), Pos: "12345678", City: "0371", Type: "B503", Line: 101}
	}
	reports := make([]model.Report, len(template))
	start := time.Date(2021, 8, 7, 0, 0, 0, 0, time.UTC)
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
