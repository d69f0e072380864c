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
	reports := make([]model.Report, 1000)
	start := time.Date(2021, 8, 7, 0, 0, 0, 0, time.UTC)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		at := start.Add(time.Duration(n) * time.Second)
		n++
		for i := range reports {
			reports[i] = model.Report{SN: fmt.Sprintf("SN%06d", i), Pos: "12345678", City: "0371", Type: "B503",
				NDate: at.Format(time.DateOnly), NTime: at.Format(time.TimeOnly), Line: 101, AcceptedAt: time.Now()}
		}
		if _, err := w.Write(context.Background(), reports); err != nil {
			b.Fatal(err)
		}
	}
}
