package task

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

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
