package task

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"monitor/model"
)

func TestBatchFraming(t *testing.T) {
	tasks := []*asynq.Task{asynq.NewTask(TypeStatusReport, []byte("one")), asynq.NewTask(TypeStatusReport, []byte("two!"))}
	batch := NewStatusBatchTask(tasks)
	var got [][]byte
	if err := SplitBatch(batch.Payload(), func(b []byte) { got = append(got, b) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !bytes.Equal(got[0], []byte("one")) || !bytes.Equal(got[1], []byte("two!")) {
		t.Fatalf("items = %q", got)
	}
	if err := SplitBatch(batch.Payload()[:5], func([]byte) {}); !errors.Is(err, ErrBadPayload) {
		t.Fatalf("truncated batch: err = %v", err)
	}
}

// TestDecodeBatch: the reports of a batch come back as they were encoded (checked against
// the reference decoder of the fuzz test), an item that is not one report is handed to bad
// without losing the others, and a broken frame returns the reports before it.
func TestDecodeBatch(t *testing.T) {
	at := time.Date(2026, 11, 28, 2, 30, 0, 123456000, time.UTC)
	want := []model.Report{
		{SN: "1C2EB08D", Pos: "P1", City: "长沙", Type: "t", NDate: "2026-11-28", NTime: "02:29:59", STime: "s", CTime: "c",
			Unum1: 1, Unum2: 1 << 31, Amount: 7, Count: 8, Line: 9, Tenant: 4, AcceptedAt: at},
		{SN: "A", NDate: "2026-11-27", NTime: "23:59:59", AcceptedAt: at.Add(-time.Hour)},
	}
	var payload []byte
	frame := func(item []byte) {
		payload = binary.AppendUvarint(payload, uint64(len(item)))
		payload = append(payload, item...)
	}
	frame(AppendReport(nil, &want[0]))
	if got := AppendBatchReport(nil, &want[0]); !bytes.Equal(got, payload) {
		t.Fatalf("AppendBatchReport = %x, want the report framed by its length: %x", got, payload)
	}
	frame([]byte{payloadVersion, 200})              // a string longer than the item
	frame(append(AppendReport(nil, &want[1]), 'x')) // one byte after the report
	frame(refAppendReport(nil, &want[1]))           // the reference encoder's
	var bad []int
	got, err := DecodeBatch(payload, func(err error, size int) {
		if !errors.Is(err, ErrBadPayload) {
			t.Errorf("bad item: %v is not ErrBadPayload", err)
		}
		bad = append(bad, size)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []model.Report{want[0], want[1]}) || !slices.Equal(bad, []int{2, len(AppendReport(nil, &want[1])) + 1}) {
		t.Fatalf("DecodeBatch = %+v, bad sizes %v", got, bad)
	}
	for i := range got {
		ref, rest, ok := refDecodeReport(AppendReport(nil, &got[i]))
		if !ok || len(rest) != 0 || ref != want[i] {
			t.Fatalf("report %d: the reference decodes its encoding as %+v", i, ref)
		}
	}
	got, err = DecodeBatch(payload[:len(payload)-3], func(error, int) {})
	if !errors.Is(err, ErrBadPayload) || len(got) != 1 || got[0] != want[0] {
		t.Fatalf("truncated batch: %d reports, err %v", len(got), err)
	}
}

// TestBatchCarriesItsReportsTraceContexts: a batch carries the traceparent of each traced
// report, at most MaxLinks of them, and no header when none is traced.
func TestBatchCarriesItsReportsTraceContexts(t *testing.T) {
	r := model.Report{SN: "1C2EB08D"}
	in := Ingest{Queues: 1, Groups: 4}
	tasks := []*asynq.Task{in.NewReportTask(&r)}
	if h := NewStatusBatchTask(tasks).Headers(); len(h) != 0 {
		t.Fatalf("untraced batch has headers %v", h)
	}
	var want []string
	for i := range MaxLinks + 5 {
		tp := fmt.Sprintf("00-4bf92f3577b34da6a3ce929d0e0e4736-%016x-01", i+1)
		tasks = append(tasks, in.NewTracedReportTask(&r, tp))
		if i < MaxLinks {
			want = append(want, tp)
		}
	}
	batch := NewStatusBatchTask(tasks)
	if got := strings.Split(batch.Headers()[HeaderLinks], "\n"); !slices.Equal(got, want) {
		t.Fatalf("links: %d, want the first %d traceparents", len(got), MaxLinks)
	}
	n := 0
	if err := SplitBatch(batch.Payload(), func([]byte) { n++ }); err != nil || n != len(tasks) {
		t.Fatalf("%d items, %v", n, err)
	}
}
