package task

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// BatchTimeout bounds one attempt at writing a batch.
const BatchTimeout = 2 * time.Minute

// NewStatusBatchTask concatenates the payloads of a group's report tasks into one batch
// task. Each report payload is length-prefixed so one bad item cannot corrupt the rest.
// The trace contexts of the reports that carry one (at most MaxLinks) go into the
// batch's HeaderLinks, since asynq gives an aggregated task only the headers set here.
func NewStatusBatchTask(reports []*asynq.Task, opts ...asynq.Option) *asynq.Task {
	size := 0
	for _, t := range reports {
		size += len(t.Payload()) + binary.MaxVarintLen32
	}
	b := make([]byte, 0, size)
	for _, t := range reports {
		b = binary.AppendUvarint(b, uint64(len(t.Payload())))
		b = append(b, t.Payload()...)
	}
	var links []string
	for _, t := range reports {
		if tp := t.Headers()[HeaderTraceparent]; tp != "" && len(links) < MaxLinks {
			links = append(links, tp)
		}
	}
	if len(links) == 0 {
		return asynq.NewTask(TypeStatusBatch, b, opts...)
	}
	return asynq.NewTaskWithHeaders(TypeStatusBatch, b, map[string]string{HeaderLinks: strings.Join(links, "\n")}, opts...)
}

// SplitBatch calls fn with each item of a batch payload. It stops at the first framing
// error, which means the rest of the payload cannot be trusted.
func SplitBatch(b []byte, fn func(item []byte)) error {
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return fmt.Errorf("%w: truncated batch item", ErrBadPayload)
		}
		fn(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	return nil
}
