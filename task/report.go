package task

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"monitor/model"
)

// payloadVersion leads every encoded report so the format can change without misreading old tasks.
const payloadVersion = 1

// AppendReport appends the binary encoding of r to b: the payload of a status:report
// task. Binary rather than JSON because every report is encoded once by the API and
// decoded once by a worker on the hot path.
func AppendReport(b []byte, r *model.Report) []byte {
	b = append(b, payloadVersion)
	for _, s := range [...]string{r.SN, r.Pos, r.City, r.Type, r.NDate, r.NTime, r.STime, r.CTime} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, n := range [...]uint32{r.Unum1, r.Unum2, r.Amount, r.Count, r.Line, r.Tenant} {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return binary.AppendVarint(b, r.AcceptedAt.UnixMicro())
}

// ErrBadPayload marks a payload that can never be decoded, so retrying it is pointless.
var ErrBadPayload = errors.New("bad payload")

// DecodeReport decodes one report that AppendReport encoded from the start of b and
// returns the rest of b.
func DecodeReport(b []byte) (model.Report, []byte, error) {
	var r model.Report
	if len(b) == 0 || b[0] != payloadVersion {
		return r, nil, fmt.Errorf("%w: unknown report version", ErrBadPayload)
	}
	b = b[1:]
	for _, s := range [...]*string{&r.SN, &r.Pos, &r.City, &r.Type, &r.NDate, &r.NTime, &r.STime, &r.CTime} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return r, nil, fmt.Errorf("%w: truncated string", ErrBadPayload)
		}
		*s = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	for _, p := range [...]*uint32{&r.Unum1, &r.Unum2, &r.Amount, &r.Count, &r.Line, &r.Tenant} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > 1<<32-1 {
			return r, nil, fmt.Errorf("%w: bad number", ErrBadPayload)
		}
		*p = uint32(n)
		b = b[k:]
	}
	us, k := binary.Varint(b)
	if k <= 0 {
		return r, nil, fmt.Errorf("%w: bad accepted time", ErrBadPayload)
	}
	r.AcceptedAt = time.UnixMicro(us).UTC()
	return r, b[k:], nil
}

// Group returns the aggregation group of sn: a hash of sn over n shards. One group
// drains at most GroupMaxSize reports per aggregation check, so reports are spread over
// a few groups, never one group per device.
func Group(sn string, n int) string {
	h := fnv.New32a()
	h.Write([]byte(sn)) // fnv's Write never fails.
	return "shard-" + strconv.Itoa(int(h.Sum32()%uint32(n)))
}

// NewStatusReportTask returns the task for one accepted report in its group of the ingest queue.
func NewStatusReportTask(r *model.Report, groups int) *asynq.Task {
	return asynq.NewTask(TypeStatusReport, AppendReport(make([]byte, 0, 96), r),
		asynq.Queue(QueueIngest), asynq.Group(Group(r.SN, groups)))
}

// HeaderTraceparent is the task header that carries a report's W3C trace context when
// tracing is on; HeaderLinks carries a batch's, one traceparent a line.
const (
	HeaderTraceparent = "traceparent"
	HeaderLinks       = "links"
)

// MaxLinks bounds the trace contexts a batch carries: OpenTelemetry keeps at most 128
// links per span by default.
const MaxLinks = 128

// NewTracedStatusReportTask is NewStatusReportTask carrying the trace context traceparent
// in its headers, so the batch that takes the report can link to the report's trace.
func NewTracedStatusReportTask(r *model.Report, groups int, traceparent string) *asynq.Task {
	return asynq.NewTaskWithHeaders(TypeStatusReport, AppendReport(make([]byte, 0, 96), r),
		map[string]string{HeaderTraceparent: traceparent}, asynq.Queue(QueueIngest), asynq.Group(Group(r.SN, groups)))
}
