package task

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"monitor/model"
)

// BatchEnqueuerOptions configures NewBatchEnqueuer.
type BatchEnqueuerOptions struct {
	// Ingest says which queue each report goes to.
	Ingest Ingest
	// MaxReports bounds the reports of one task; default 1000. A batch that reaches it is
	// sent at once, even while others of its queue are on their way.
	MaxReports int
	// MaxInFlight is how many batches of one queue may be on their way to Redis before
	// reports wait to gather into the next; default 1.
	MaxInFlight int
	// Linger is how long a batch may wait for more reports once the batch before it is
	// stored, when that one held at least LingerFrom reports: reports arrive fast, as in
	// a burst. It leaves earlier once it holds LingerReports. Defaults 2ms, 16 and 128; a
	// negative Linger never waits. Where batches stay smaller than LingerFrom (a trickle,
	// or 5,000 reports/s on the bench host) no batch waits, so latency is unchanged there.
	Linger        time.Duration
	LingerFrom    int
	LingerReports int
	// Timeout bounds one enqueue; default 5s. Every report of a batch that times out is
	// refused, though Redis may have stored it (the duplicates are written once).
	Timeout time.Duration
	// MaxRetry and TaskTimeout are the batch task's asynq.MaxRetry and asynq.Timeout;
	// zero keeps asynq's defaults.
	MaxRetry    int
	TaskTimeout time.Duration
}

func (o BatchEnqueuerOptions) withDefaults() (BatchEnqueuerOptions, error) {
	o.Ingest.Queues = cmp.Or(o.Ingest.Queues, 1)
	o.MaxReports = cmp.Or(o.MaxReports, 1000)
	o.MaxInFlight = cmp.Or(o.MaxInFlight, 1)
	o.Timeout = cmp.Or(o.Timeout, 5*time.Second)
	o.Linger = cmp.Or(o.Linger, 2*time.Millisecond)
	o.LingerFrom = cmp.Or(o.LingerFrom, 16)
	o.LingerReports = cmp.Or(o.LingerReports, 128)
	switch {
	case o.Ingest.Queues < 1 || o.Ingest.Queues > MaxIngestQueues:
		return o, fmt.Errorf("batch enqueuer: %d ingest queues is not 1-%d", o.Ingest.Queues, MaxIngestQueues)
	case o.MaxReports < 1 || o.MaxInFlight < 1 || o.LingerFrom < 1 || o.LingerReports < 1:
		return o, fmt.Errorf("batch enqueuer: max reports %d, max in flight %d, linger from %d or linger reports %d is below 1",
			o.MaxReports, o.MaxInFlight, o.LingerFrom, o.LingerReports)
	case o.Timeout < 0 || o.TaskTimeout < 0 || o.MaxRetry < 0:
		return o, errors.New("batch enqueuer: negative timeout or retry count")
	}
	return o, nil
}

// BatchEnqueuer enqueues accepted reports on their ingest queues, the reports that
// arrive together as one status:batch task: group commit. While one batch of its queue
// is on its way to Redis, the reports that arrive meanwhile gather into the next, which
// leaves as soon as that one is stored; only in a burst does it linger a moment longer
// for more (BatchEnqueuerOptions.Linger). So a lone report costs one round trip, as a
// task of its own would, and a burst costs one task per round trip or linger instead of
// one per report (Redis then pays one script per batch, not one per report, and there is
// no aggregation to wait for).
type BatchEnqueuer struct {
	client *asynq.Client
	opt    BatchEnqueuerOptions
	queues []*batchQueue
}

// batchQueue is the batching state of one ingest queue.
type batchQueue struct {
	name     string
	mu       sync.Mutex
	next     *reportBatch // gathering; nil when empty
	inFlight int          // batches on their way to Redis, and the lingering one
	linger   *reportBatch // next, while it lingers (see BatchEnqueuerOptions.Linger)
}

// reportBatch is one status:batch task in the making and, once sent, its outcome.
type reportBatch struct {
	payload []byte
	reports int
	links   []string
	done    chan struct{} // closed when err is set
	err     error
}

// NewBatchEnqueuer returns a BatchEnqueuer that enqueues through client.
func NewBatchEnqueuer(client *asynq.Client, o BatchEnqueuerOptions) (*BatchEnqueuer, error) {
	opt, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("batch enqueuer: no client")
	}
	e := &BatchEnqueuer{client: client, opt: opt, queues: make([]*batchQueue, opt.Ingest.Queues)}
	for i := range e.queues {
		e.queues[i] = &batchQueue{name: IngestQueue(i, opt.Ingest.Queues)}
	}
	return e, nil
}

// Enqueue adds r to the next batch of its queue and returns once that batch is on Redis,
// or with the error that kept it off. traceparent, when set, is the trace context the
// batch links to. The wait is bounded by the enqueue timeout, not by ctx: a report that
// has joined a batch goes with it, so giving up early would only hide the outcome.
func (e *BatchEnqueuer) Enqueue(_ context.Context, r *model.Report, traceparent string) error {
	q := e.queues[e.opt.Ingest.Shard(r.SN)]
	q.mu.Lock()
	b := q.next
	if b == nil {
		b = &reportBatch{done: make(chan struct{})}
		q.next = b
	}
	b.add(r, traceparent)
	send := false
	switch {
	case q.linger == b:
		// Its place among the batches in flight is held: it leaves once large enough,
		// or when its time is up (lingerOver).
		if send = b.reports >= min(e.opt.LingerReports, e.opt.MaxReports); send {
			q.next, q.linger = nil, nil
		}
	case q.inFlight < e.opt.MaxInFlight || b.reports >= e.opt.MaxReports:
		send = true
		q.next = nil
		q.inFlight++
	}
	q.mu.Unlock()
	if send {
		// The report that sends a batch waits for it anyway: it sends it itself, which
		// spares a goroutine switch on the way to Redis and back.
		e.send(q, b)
	}
	<-b.done
	return b.err
}

// payloadPool recycles batch payloads: a burst sends thousands of batches a second, each
// growing its payload from scratch otherwise. maxPooledPayload keeps the pool from holding
// on to the few that grew large.
var payloadPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledPayload = 256 << 10

// add appends r to the batch payload.
func (b *reportBatch) add(r *model.Report, traceparent string) {
	if b.payload == nil {
		b.payload = (*payloadPool.Get().(*[]byte))[:0]
	}
	b.payload = AppendBatchReport(b.payload, r)
	b.reports++
	if traceparent != "" && len(b.links) < MaxLinks {
		b.links = append(b.links, traceparent)
	}
}

// send enqueues b and, once it is stored, starts sending the batch that gathered
// meanwhile, if the in-flight limit allows, in a goroutine of its own: none of its
// reports' requests has sent a batch of its own to wait on.
func (e *BatchEnqueuer) send(q *batchQueue, b *reportBatch) {
	b.err = e.enqueue(q.name, b)
	// asynq has encoded the task into a message of its own by now, even when the enqueue
	// timed out, so the payload's memory serves the next batch.
	if payload := b.payload[:0]; cap(payload) <= maxPooledPayload {
		payloadPool.Put(&payload)
	}
	b.payload = nil
	close(b.done)
	q.mu.Lock()
	q.inFlight--
	var next *reportBatch
	// A lingering batch (q.next itself) holds its place already, and leaves on its own.
	if q.inFlight < e.opt.MaxInFlight && q.next != nil && q.linger == nil {
		q.inFlight++
		if e.opt.Linger > 0 && b.reports >= e.opt.LingerFrom && q.next.reports < e.opt.LingerReports {
			// A burst: fewer, larger tasks cost Redis and the workers less per report
			// than the short wait costs the reports.
			lingering := q.next
			q.linger = lingering
			time.AfterFunc(e.opt.Linger, func() { e.lingerOver(q, lingering) })
		} else {
			next, q.next = q.next, nil
		}
	}
	q.mu.Unlock()
	if next != nil {
		go e.send(q, next)
	}
}

// lingerOver sends b, which lingered, unless it has left already.
func (e *BatchEnqueuer) lingerOver(q *batchQueue, b *reportBatch) {
	q.mu.Lock()
	send := q.linger == b
	if send {
		q.next, q.linger = nil, nil
	}
	q.mu.Unlock()
	if send {
		e.send(q, b)
	}
}

func (e *BatchEnqueuer) enqueue(queue string, b *reportBatch) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.opt.Timeout)
	defer cancel()
	opts := []asynq.Option{asynq.Queue(queue)}
	if e.opt.MaxRetry > 0 {
		opts = append(opts, asynq.MaxRetry(e.opt.MaxRetry))
	}
	if e.opt.TaskTimeout > 0 {
		opts = append(opts, asynq.Timeout(e.opt.TaskTimeout))
	}
	var t *asynq.Task
	if len(b.links) == 0 {
		t = asynq.NewTask(TypeStatusBatch, b.payload, opts...)
	} else {
		t = asynq.NewTaskWithHeaders(TypeStatusBatch, b.payload, map[string]string{HeaderLinks: strings.Join(b.links, "\n")}, opts...)
	}
	if _, err := e.client.EnqueueContext(ctx, t); err != nil {
		return fmt.Errorf("enqueue batch of %d reports: %w", b.reports, err)
	}
	return nil
}
