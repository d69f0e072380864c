package task

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hibiken/asynq"
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
