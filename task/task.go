// Package task holds the asynq task types, payloads and constructors that the api, worker
// and scheduler share.
package task

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// Queue names. Ingest is kept apart from periodic work so a backlog of reports never
// delays the offline sweep or an alert, and so operators can pause one without the other.
const (
	QueueIngest   = "ingest"
	QueuePeriodic = "periodic"
	QueueNotify   = "notify"
)

// Task types.
const (
	// TypeStatusReport is one terminal report; it waits in a group until aggregation.
	TypeStatusReport = "status:report"
	// TypeStatusBatch is what the aggregator makes of a group's reports.
	TypeStatusBatch = "status:batch"
)

// Report is one terminal status report as the API accepted it. The JSON names are the
// terminal's wire names; the payload on Redis uses a compact binary form (see Append).
type Report struct {
	SN     string `json:"sn"`
	Pos    string `json:"pos"`
	City   string `json:"city"`
	Type   string `json:"id"`
	Unum1  uint32 `json:"unum1"`
	Unum2  uint32 `json:"unum2"`
	NDate  string `json:"ndate"`
	NTime  string `json:"ntime"`
	Amount uint32 `json:"amount"`
	Count  uint32 `json:"count"`
	Line   uint32 `json:"line"`
	STime  string `json:"stime"`
	CTime  string `json:"ctime"`
	Tenant uint32 `json:"tenant"`
	// AcceptedAt is when the API acknowledged the report; it is the device's last-seen time.
	AcceptedAt time.Time `json:"-"`
}

// payloadVersion leads every encoded report so the format can change without misreading old tasks.
const payloadVersion = 1

// Append appends the binary encoding of r to b. Binary rather than JSON because every
// report is encoded once by the API and decoded once by a worker on the hot path.
func (r *Report) Append(b []byte) []byte {
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

// DecodeReport decodes one report from the start of b and returns the rest of b.
func DecodeReport(b []byte) (Report, []byte, error) {
	var r Report
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
func NewStatusReportTask(r *Report, groups int) *asynq.Task {
	return asynq.NewTask(TypeStatusReport, r.Append(make([]byte, 0, 96)),
		asynq.Queue(QueueIngest), asynq.Group(Group(r.SN, groups)))
}

// NewStatusBatchTask concatenates the payloads of a group's report tasks into one batch
// task. Each report payload is length-prefixed so one bad item cannot corrupt the rest.
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
	return asynq.NewTask(TypeStatusBatch, b, opts...)
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
