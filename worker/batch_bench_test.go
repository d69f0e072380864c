package worker

import (
	"fmt"
	"testing"
	"time"

	"monitor/task"
)

// BenchmarkInsertStatus measures building one full-size tb_status INSERT (statement and
// arguments) for MySQL.
func BenchmarkInsertStatus(b *testing.B) {
	reports := make([]task.Report, rowsPerStatement)
	for i := range reports {
		reports[i] = task.Report{SN: fmt.Sprintf("SN%06d", i), Pos: "12345678", City: "0371", Type: "B503",
			NDate: "2021-08-07", NTime: "18:30:30", Line: 101, STime: "05:01:01", CTime: "18:30:20", AcceptedAt: time.Now()}
	}
	d := dialect{mysql: true}
	b.ReportAllocs()
	for b.Loop() {
		d.insertStatus(reports)
	}
}
