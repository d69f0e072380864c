package task

import (
	"monitor/model"
	"testing"
	"time"
)

var benchReport = model.Report{SN: "1C2EB08D", Pos: "12345678", City: "0371", Type: "B503", NDate: "2021-08-07",
	NTime: "18:30:30", Line: 101, STime: "05:01:01", CTime: "18:30:20", AcceptedAt: time.Now()}

// BenchmarkNewStatusReportTask measures building one report's task: encoding and sharding.
func BenchmarkNewStatusReportTask(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Ingest{Queues: 1, Groups: 16}.NewReportTask(&benchReport)
	}
}

// BenchmarkDecodeReport measures the worker's decoding of one report payload.
func BenchmarkDecodeReport(b *testing.B) {
	payload := AppendReport(nil, &benchReport)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeReport(payload); err != nil {
			b.Fatal(err)
		}
	}
}
