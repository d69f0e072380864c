package task

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"monitor/model"
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
		b = appendItem(b, t.Payload())
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

// AppendBatchReport appends r to the batch payload b as one item, as SplitBatch and
// DecodeBatch read it.
func AppendBatchReport(b []byte, r *model.Report) []byte {
	var scratch [160]byte
	return appendItem(b, AppendReport(scratch[:0], r))
}

// appendItem appends item to the batch payload b, prefixed with its length.
func appendItem(b, item []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(item)))
	return append(b, item...)
}

// SplitBatch calls fn with each item of a batch payload. It stops at the first framing
// error, which means the rest of the payload cannot be trusted.
func SplitBatch(b []byte, fn func(item []byte)) error { return splitBatch(b, fn) }

func splitBatch[T string | []byte](b T, fn func(item T)) error {
	for len(b) > 0 {
		n, k := uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return fmt.Errorf("%w: truncated batch item", ErrBadPayload)
		}
		fn(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	return nil
}

// DecodeBatch decodes the reports of a batch payload into a slice of their number. Their
// strings share one copy of the payload: one allocation a batch instead of eight a
// report. An item that is not exactly one report goes to bad, with its size, and the
// others are still returned; a framing error ends the payload and is returned with the
// reports before it.
func DecodeBatch(payload []byte, bad func(err error, size int)) ([]model.Report, error) {
	var items []string
	ferr := splitBatch(string(payload), func(item string) { items = append(items, item) })
	reports := make([]model.Report, 0, len(items))
	for _, item := range items {
		r, rest, err := decodeReport(item)
		if err == nil && len(rest) > 0 {
			// An item is one report: bytes after it mean the item is not what the API wrote.
			err = fmt.Errorf("%w: %d bytes after the report", ErrBadPayload, len(rest))
		}
		if err != nil {
			bad(err, len(item))
			continue
		}
		reports = append(reports, r)
	}
	return reports, ferr
}
