package task

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
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

// maxAcceptedMicros is the last microsecond of year 9999, the newest accepted time a
// payload may carry.
var maxAcceptedMicros = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() - 1

// DecodeReport decodes one report that AppendReport encoded from the start of b and
// returns the rest of b.
func DecodeReport(b []byte) (model.Report, []byte, error) {
	r, rest, err := decodeReport(string(b))
	if err != nil {
		return r, nil, err
	}
	return r, b[len(b)-len(rest):], nil
}

// decodeReport is DecodeReport on a string: the report's strings are substrings of s,
// so decoding copies nothing.
func decodeReport(s string) (model.Report, string, error) {
	var r model.Report
	if len(s) == 0 || s[0] != payloadVersion {
		return r, "", fmt.Errorf("%w: unknown report version", ErrBadPayload)
	}
	s = s[1:]
	for _, f := range [...]*string{&r.SN, &r.Pos, &r.City, &r.Type, &r.NDate, &r.NTime, &r.STime, &r.CTime} {
		n, k := uvarint(s)
		if k <= 0 || n > uint64(len(s)-k) {
			return r, "", fmt.Errorf("%w: truncated string", ErrBadPayload)
		}
		*f = s[k : k+int(n)]
		s = s[k+int(n):]
	}
	for _, p := range [...]*uint32{&r.Unum1, &r.Unum2, &r.Amount, &r.Count, &r.Line, &r.Tenant} {
		n, k := uvarint(s)
		if k <= 0 || n > 1<<32-1 {
			return r, "", fmt.Errorf("%w: bad number", ErrBadPayload)
		}
		*p = uint32(n)
		s = s[k:]
	}
	ux, k := uvarint(s)
	us := int64(ux >> 1) // zigzag, as binary.AppendVarint writes it
	if ux&1 != 0 {
		us = ^us
	}
	if k <= 0 || us < 0 || us > maxAcceptedMicros {
		// The API writes the time it accepted the report; one before 1970 or past 9999 is
		// not what it wrote, and neither JSON nor a MySQL DATETIME could hold it.
		return r, "", fmt.Errorf("%w: bad accepted time", ErrBadPayload)
	}
	r.AcceptedAt = time.UnixMicro(us).UTC()
	return r, s[k:], nil
}

// uvarint is binary.Uvarint on a string as well: the value and the bytes it took, 0
// when s ends first and negative when the value overflows 64 bits.
func uvarint[T string | []byte](s T) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s); i++ {
		if i == binary.MaxVarintLen64 {
			return 0, -(i + 1)
		}
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1)
			}
			return x | uint64(c)<<shift, i + 1
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// Ingest says how reports are spread: over Queues asynq queues (1-256), and inside each
// queue over Groups aggregation groups (1-1024), both by one hash of sn. One group
// drains at most GroupMaxSize reports per aggregation check, so reports are spread over
// a few groups, never one group per device; and asynq keeps each queue under its own
// hash tag, so several queues spread ingest over the nodes of a Redis Cluster.
type Ingest struct {
	Queues int
	Groups int
}

// MaxIngestQueues bounds Ingest.Queues: every worker polls each queue in turn.
const MaxIngestQueues = 256

// snHash is the one hash of sn that both the queue and the group come from.
func snHash(sn string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(sn)) // fnv's Write never fails.
	return h.Sum32()
}

// Shard returns the index of sn's queue, 0 to Queues-1.
func (in Ingest) Shard(sn string) int { return int(snHash(sn) % uint32(max(in.Queues, 1))) }

// Queue returns the name of sn's ingest queue.
func (in Ingest) Queue(sn string) string { return IngestQueue(in.Shard(sn), in.Queues) }

// Group returns sn's aggregation group inside its queue. It takes the hash divided by
// the queue count, so the groups of one queue are all used whatever the two counts share.
func (in Ingest) Group(sn string) string {
	h := snHash(sn) / uint32(max(in.Queues, 1))
	return "shard-" + strconv.Itoa(int(h%uint32(max(in.Groups, 1))))
}

// QueueNames returns the names of the ingest queues, in shard order.
func (in Ingest) QueueNames() []string {
	names := make([]string, max(in.Queues, 1))
	for i := range names {
		names[i] = IngestQueue(i, len(names))
	}
	return names
}

// GroupNames returns the names of the aggregation groups inside each ingest queue.
func (in Ingest) GroupNames() []string {
	names := make([]string, max(in.Groups, 1))
	for i := range names {
		names[i] = "shard-" + strconv.Itoa(i)
	}
	return names
}

// IngestQueue returns the name of ingest queue i of n: QueueIngest itself when n is 1,
// so a deployment of one queue keeps its queue, else "ingest-<i>". The names carry no
// braces, so asynq's hash tag {<name>} is the whole name.
func IngestQueue(i, n int) string {
	if n <= 1 {
		return QueueIngest
	}
	return QueueIngest + "-" + strconv.Itoa(i)
}

// IsIngestQueue reports whether name is the name of an ingest queue of some count:
// "ingest" or "ingest-<n>".
func IsIngestQueue(name string) bool {
	if name == QueueIngest {
		return true
	}
	n, ok := strings.CutPrefix(name, QueueIngest+"-")
	if !ok || n == "" {
		return false
	}
	i, err := strconv.Atoi(n)
	return err == nil && i >= 0 && i < MaxIngestQueues && strconv.Itoa(i) == n
}

// NewReportTask returns the task for one accepted report in its group of its ingest queue.
func (in Ingest) NewReportTask(r *model.Report) *asynq.Task {
	return asynq.NewTask(TypeStatusReport, AppendReport(make([]byte, 0, 96), r),
		asynq.Queue(in.Queue(r.SN)), asynq.Group(in.Group(r.SN)))
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

// NewTracedReportTask is NewReportTask carrying the trace context traceparent in its
// headers, so the batch that takes the report can link to the report's trace.
func (in Ingest) NewTracedReportTask(r *model.Report, traceparent string) *asynq.Task {
	return asynq.NewTaskWithHeaders(TypeStatusReport, AppendReport(make([]byte, 0, 96), r),
		map[string]string{HeaderTraceparent: traceparent}, asynq.Queue(in.Queue(r.SN)), asynq.Group(in.Group(r.SN)))
}
