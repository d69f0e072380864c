// Package worker processes the asynq tasks: it aggregates terminal reports into batches
// and writes each batch into the database in one transaction.
package worker

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"monitor/internal/tracing"
	"monitor/model"
	"monitor/task"
)

// The batch writer's metrics; the process that runs workers registers Collectors on the
// registry it serves, so a process without workers shows none of them.
var (
	reportsStored = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "monitor_reports_stored_total", Help: "Reports inserted into tb_status.",
	})
	reportsDuplicate = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "monitor_reports_duplicate_total", Help: "Reports already in tb_status (repeated or re-delivered).",
	})
	itemsBad = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "monitor_batch_items_bad_total", Help: "Batch items that could not be decoded and were dropped.",
	})
	batchSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "monitor_batch_write_seconds", Help: "Time to write one batch.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	})
	batchReports = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "monitor_batch_reports", Help: "Reports in one batch written.",
		Buckets: []float64{1, 10, 50, 100, 250, 500, 1000, 2000, 4000},
	})
	ingestLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "monitor_ingest_lag_seconds", Help: "Time from acceptance by the API to commit in tb_status, per batch's oldest report.",
		Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
	})
)

// rowsPerStatement bounds one INSERT: 1000 rows keep the statement (about 150 KB of SQL
// text on MySQL) far below max_allowed_packet, and SQLite's 15-16 placeholders a row
// below its limit of 32766.
const rowsPerStatement = 1000

// BatchWriter stores batches of reports: their history rows in tb_status and each
// device's newest report in devices, in one transaction.
type BatchWriter struct {
	db     *gorm.DB
	log    *slog.Logger
	sql    dialect
	tracer trace.Tracer // nil: tracing off
	// noLoad is set once the server has refused LOAD DATA LOCAL or its staging table: the
	// writes use INSERTs from then on.
	noLoad atomic.Bool

	// The batches that tasks running at once hand in, written together: see writeTogether.
	mu             sync.Mutex
	waiting        []*batchWrite
	waitingReports int // the reports of waiting
	writers        int // writes in progress

	// requeue, when set, merges the last attempts of batches that fail together: see
	// Consolidating.
	requeue    *asynq.Client
	lastMu     sync.Mutex
	lastWait   []*lastAttempt
	lastLeader bool
}

// lastAttempt is a batch task's reports on its last attempt, waiting to be merged.
type lastAttempt struct {
	reports []model.Report
	done    chan struct{} // closed when err is set
	err     error
}

// headerMerged marks a batch task that Consolidating made: it is archived as it is if it
// fails, never merged again.
const headerMerged = "merged"

// Merging the last attempts: the first waits consolidateWait for others, and a merged
// task holds at most mergedReports reports.
const (
	consolidateWait = 200 * time.Millisecond
	mergedReports   = 10000
)

// batchWrite is one task's reports waiting to be written, and then the outcome.
type batchWrite struct {
	reports []model.Report
	done    chan struct{} // closed when err is set
	err     error
	lead    chan struct{} // closed when a finishing writer hands its task the writing
	// leading and abandoned are guarded by BatchWriter.mu: the task writes, or it gave
	// up waiting (its deadline), so it must not be handed the writing.
	leading, abandoned bool
}

// Joint writes: maxWriters bound the transactions one worker process runs at once, and
// maxJointReports the reports of one. A second write starts only when backlogReports
// wait: in a steady trickle one writer keeps up, and its transactions are twice the size
// of two writers' (on the bench host that cut MariaDB's commits in half and the API's
// median latency at 5,000 reports/s from 4.1 to 3.1 ms); in a burst two keep MariaDB busy.
const (
	maxWriters      = 2
	maxJointReports = 4000
	backlogReports  = 1000
)

// Consolidating returns w merging, through client, the last attempts of the batch tasks
// that fail together into one task that runs once more and is archived if it fails too.
// asynq keeps at most 10,000 archived tasks per queue and deletes the oldest beyond that,
// and the API's batches hold one or two reports at a low rate: a database outage longer
// than the retries would otherwise archive a task per report or two, and past 10,000
// lose acknowledged reports.
func (w *BatchWriter) Consolidating(client *asynq.Client) *BatchWriter {
	w.requeue = client
	return w
}

// NewBatchWriter returns a BatchWriter writing to db.
func NewBatchWriter(db *gorm.DB, log *slog.Logger) *BatchWriter {
	return &BatchWriter{db: db, log: log, sql: dialectOf(db)}
}

// Traced returns w tracing each batch with tracer: a span linked to the spans that
// enqueued its reports (task.HeaderLinks), with a child span per statement.
func (w *BatchWriter) Traced(tracer trace.Tracer) *BatchWriter {
	w.tracer = tracer
	return w
}

// ProcessTask handles a task.TypeStatusBatch task. A bad item is counted and logged; it
// never keeps the rest of the batch from being stored. Once the rest is stored, a batch
// with a bad item fails with SkipRetry, so asynq archives it at once: the operator finds
// the undecodable item in asynqmon (running the batch again stores its good items once
// more, which the unique key absorbs). A database error is returned so asynq retries the
// whole batch, which is safe because writes are idempotent.
func (w *BatchWriter) ProcessTask(ctx context.Context, t *asynq.Task) (err error) {
	if w.tracer != nil {
		var span trace.Span
		ctx, span = w.tracer.Start(ctx, "process "+task.TypeStatusBatch, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithLinks(tracing.Links(t.Headers()[task.HeaderLinks])...))
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
	}
	bad := 0
	reports, err := task.DecodeBatch(t.Payload(), func(err error, size int) {
		bad++
		w.log.WarnContext(ctx, "drop undecodable batch item", "err", err, "bytes", size)
	})
	if err != nil {
		bad++
		w.log.ErrorContext(ctx, "batch framing broken; writing the items before the break", "err", err, "decoded", len(reports))
	}
	itemsBad.Add(float64(bad))
	if len(reports) == 0 {
		return fmt.Errorf("batch of %d bytes has no decodable report: %w", len(t.Payload()), asynq.SkipRetry)
	}
	if err := w.writeTogether(ctx, reports); err != nil {
		if bad == 0 && w.requeue != nil && lastAttemptOf(ctx) && t.Headers()[headerMerged] == "" {
			merr := w.mergeLastAttempt(ctx, reports)
			if merr == nil {
				w.log.WarnContext(ctx, "batch failed its last attempt; merged with the others that failed", "reports", len(reports), "err", err)
				return nil
			}
			w.log.ErrorContext(ctx, "could not merge a failed batch; archiving it alone", "err", merr)
		}
		return err
	}
	if bad > 0 {
		return fmt.Errorf("batch holds %d undecodable items (its %d others are stored): %w", bad, len(reports), asynq.SkipRetry)
	}
	return nil
}

// lastAttemptOf reports whether ctx is a task's last attempt: asynq archives the task if
// it fails.
func lastAttemptOf(ctx context.Context) bool {
	retried, ok := asynq.GetRetryCount(ctx)
	limit, ok2 := asynq.GetMaxRetry(ctx)
	return ok && ok2 && retried >= limit
}

// mergeLastAttempt hands reports to the merge of the last attempts failing now: the first
// to arrive waits consolidateWait for others and enqueues them all as merged tasks, run
// once more (MaxRetry 0) on its queue. It returns once they are enqueued.
func (w *BatchWriter) mergeLastAttempt(ctx context.Context, reports []model.Report) error {
	me := &lastAttempt{reports: reports, done: make(chan struct{})}
	w.lastMu.Lock()
	w.lastWait = append(w.lastWait, me)
	lead := !w.lastLeader
	w.lastLeader = true
	w.lastMu.Unlock()
	if lead {
		select {
		case <-time.After(consolidateWait):
		case <-ctx.Done():
		}
		w.lastMu.Lock()
		waiting := w.lastWait
		w.lastWait, w.lastLeader = nil, false
		w.lastMu.Unlock()
		err := errors.New("merge: no asynq queue in the task's context")
		if queue, ok := asynq.GetQueueName(ctx); ok {
			// Without its queue a merged task would land in asynq's default queue,
			// which no worker of monitor serves.
			err = w.enqueueMerged(context.WithoutCancel(ctx), queue, waiting)
		}
		for _, b := range waiting {
			b.err = err
			close(b.done)
		}
	}
	select {
	case <-me.done:
		return me.err
	case <-ctx.Done():
		return fmt.Errorf("wait for merge: %w", ctx.Err())
	}
}

// enqueueMerged enqueues the reports of batches as status:batch tasks of at most
// mergedReports reports each.
func (w *BatchWriter) enqueueMerged(ctx context.Context, queue string, batches []*lastAttempt) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var payload []byte
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		t := asynq.NewTaskWithHeaders(task.TypeStatusBatch, payload, map[string]string{headerMerged: "1"},
			asynq.Queue(queue), asynq.MaxRetry(0), asynq.Timeout(task.BatchTimeout))
		if _, err := w.requeue.EnqueueContext(ctx, t); err != nil {
			return fmt.Errorf("enqueue merged batch of %d: %w", n, err)
		}
		payload, n = nil, 0
		return nil
	}
	for _, b := range batches {
		for i := range b.reports {
			payload = task.AppendBatchReport(payload, &b.reports[i])
			if n++; n == mergedReports {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// writeTogether stores reports together with those of the other tasks running at once:
// group commit. The API sends a batch per Redis round trip, small when reports trickle
// in, and a transaction per small batch would cost MariaDB a commit per few reports. A
// task that finds no write in progress (or a backlog and fewer than maxWriters) becomes
// a writer: it writes what waits, oldest first, until its own batch is written, then
// hands its place to the oldest task still waiting. So a writer works under its own
// task's deadline and never for longer than its own batch needs, however long the
// backlog lasts.
func (w *BatchWriter) writeTogether(ctx context.Context, reports []model.Report) error {
	me := &batchWrite{reports: reports, done: make(chan struct{}), lead: make(chan struct{})}
	w.mu.Lock()
	w.waiting = append(w.waiting, me)
	w.waitingReports += len(reports)
	me.leading = w.writers == 0 || w.writers < maxWriters && w.waitingReports >= backlogReports
	if me.leading {
		w.writers++
	}
	w.mu.Unlock()
	if !me.leading {
		select {
		case <-me.done:
			return me.err
		case <-me.lead:
		case <-ctx.Done():
			w.mu.Lock()
			me.abandoned = true
			if me.leading { // handed the writing just as the deadline came: pass it on
				w.handOff()
			}
			w.mu.Unlock()
			// Its batch may still be written, which the retry then finds stored.
			return fmt.Errorf("wait for joint write: %w", ctx.Err())
		}
	}
	w.writeUntil(ctx, me)
	select {
	case <-me.done:
		return me.err
	case <-ctx.Done():
		return fmt.Errorf("wait for joint write: %w", ctx.Err())
	}
}

// writeUntil writes the waiting batches, oldest first, at most maxJointReports reports at
// a time (but at least one batch), until me is written; then it hands the writer's place
// on. It also returns, giving the place up, when nothing waits while me is still being
// written by another writer.
func (w *BatchWriter) writeUntil(ctx context.Context, me *batchWrite) {
	for {
		w.mu.Lock()
		select {
		case <-me.done:
			w.handOff()
			w.mu.Unlock()
			return
		default:
		}
		n, rows := 0, 0
		for n < len(w.waiting) && (n == 0 || rows+len(w.waiting[n].reports) <= maxJointReports) {
			rows += len(w.waiting[n].reports)
			n++
		}
		if n == 0 {
			w.writers--
			w.mu.Unlock()
			return
		}
		batches := slices.Clone(w.waiting[:n])
		w.waiting = slices.Delete(w.waiting, 0, n)
		w.waitingReports -= rows
		w.mu.Unlock()
		w.writeBatches(ctx, batches, rows)
	}
}

// handOff gives a finishing writer's place to the oldest waiting task that still waits,
// or gives it up when none does. w.mu is held.
func (w *BatchWriter) handOff() {
	for _, b := range w.waiting {
		if !b.leading && !b.abandoned {
			b.leading = true
			close(b.lead)
			return
		}
	}
	w.writers--
}

// writeBatches writes batches in one transaction and hands each its outcome. When that
// fails for anything but a lock conflict (already retried), each batch is written on its
// own, so one batch the database refuses fails no other.
func (w *BatchWriter) writeBatches(ctx context.Context, batches []*batchWrite, rows int) {
	finish := func(b *batchWrite, err error) {
		b.err = err
		close(b.done)
	}
	if len(batches) == 1 {
		_, err := w.Write(ctx, batches[0].reports)
		finish(batches[0], err)
		return
	}
	all := make([]model.Report, 0, rows)
	for _, b := range batches {
		all = append(all, b.reports...)
	}
	_, err := w.Write(ctx, all)
	if err != nil && !retryable(err) && ctx.Err() == nil {
		w.log.WarnContext(ctx, "joint batch write failed; writing each batch on its own", "batches", len(batches), "err", err)
		for _, b := range batches {
			_, err := w.Write(ctx, b.reports)
			finish(b, err)
		}
		return
	}
	for _, b := range batches {
		finish(b, err)
	}
}

// Write stores reports and returns how many were new. Rows are sorted by sn so that
// concurrent batches take row locks in the same order; a deadlock is retried.
func (w *BatchWriter) Write(ctx context.Context, reports []model.Report) (inserted int64, err error) {
	start := time.Now()
	slices.SortFunc(reports, func(a, b model.Report) int {
		return cmp.Or(strings.Compare(a.SN, b.SN), strings.Compare(a.NDate, b.NDate),
			strings.Compare(a.NTime, b.NTime), a.AcceptedAt.Compare(b.AcceptedAt))
	})
	devices := newestPerDevice(reports)
	for attempt := 1; ; attempt++ {
		inserted, err = w.write(ctx, reports, devices)
		if err == nil || !retryable(err) || attempt == 5 {
			break
		}
		w.log.WarnContext(ctx, "batch write conflicted, retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("write status batch: %w", ctx.Err())
		case <-time.After(time.Duration(attempt*attempt) * 20 * time.Millisecond):
		}
	}
	if err != nil {
		return 0, fmt.Errorf("write status batch of %d: %w", len(reports), err)
	}
	batchSeconds.Observe(time.Since(start).Seconds())
	batchReports.Observe(float64(len(reports)))
	oldest := reports[0].AcceptedAt
	for _, r := range reports {
		if r.AcceptedAt.Before(oldest) {
			oldest = r.AcceptedAt
		}
	}
	ingestLag.Observe(time.Since(oldest).Seconds())
	reportsStored.Add(float64(inserted))
	reportsDuplicate.Add(float64(int64(len(reports)) - inserted))
	return inserted, nil
}

func (w *BatchWriter) write(ctx context.Context, reports []model.Report, devices []deviceRow) (int64, error) {
	if w.sql.mysql && !w.noLoad.Load() {
		n, err := w.writeWith(ctx, reports, devices, w.loadReports)
		switch {
		case errors.Is(err, errWarningsHidden):
			w.log.InfoContext(ctx, "writing a batch again with INSERTs: its load skipped rows the server's warnings do not account for", "err", err)
			return w.writeWith(ctx, reports, devices, w.insertReports)
		case !errors.Is(err, errLoadRefused):
			return n, err
		}
		if !w.noLoad.Swap(true) {
			w.log.WarnContext(ctx, "the database refuses LOAD DATA LOCAL INFILE or its staging table (local_infile=OFF? no CREATE TEMPORARY TABLES privilege?): writing reports with INSERTs, which cost it about twice the CPU", "err", err)
		}
	}
	return w.writeWith(ctx, reports, devices, w.insertReports)
}

// writeWith runs store in a transaction.
func (w *BatchWriter) writeWith(ctx context.Context, reports []model.Report, devices []deviceRow,
	store func(context.Context, gorm.ConnPool, []model.Report, []deviceRow) (int64, error)) (int64, error) {
	var inserted int64
	err := w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The statements are complete SQL: they go to the transaction's connection
		// directly, skipping GORM's per-argument rebuilding of the statement.
		var err error
		inserted, err = store(ctx, tx.Statement.ConnPool, reports, devices)
		return err
	})
	return inserted, err
}

// insertReports writes reports and devices with multi-row INSERTs and returns how many
// reports were new.
func (w *BatchWriter) insertReports(ctx context.Context, conn gorm.ConnPool, reports []model.Report, devices []deviceRow) (int64, error) {
	var inserted int64
	for chunk := range slices.Chunk(reports, rowsPerStatement) {
		query, args := w.sql.insertStatus(chunk)
		res, err := w.exec(ctx, conn, "INSERT", "tb_status", query, len(chunk), args)
		if err != nil {
			return 0, fmt.Errorf("insert tb_status: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("insert tb_status: %w", err)
		}
		inserted += n
	}
	for chunk := range slices.Chunk(devices, rowsPerStatement) {
		query, args := w.sql.upsertDevices(chunk)
		if _, err := w.exec(ctx, conn, "INSERT", "devices", query, len(chunk), args); err != nil {
			return 0, fmt.Errorf("upsert devices: %w", err)
		}
	}
	return inserted, nil
}

// exec runs query, the statement op of rows rows into table, on the transaction's
// connection.
func (w *BatchWriter) exec(ctx context.Context, conn gorm.ConnPool, op, table, query string, rows int, args []any) (sql.Result, error) {
	begin := time.Now()
	res, err := conn.ExecContext(ctx, query, args...)
	w.traceSQL(ctx, begin, op, table, query, rows, err)
	return res, err
}

// traceSQL hands a statement run past GORM to the database's GORM logger, so a slow
// statement is logged like any other (duration, and the statement without its values),
// and with tracing on records it as a child span of the batch's.
func (w *BatchWriter) traceSQL(ctx context.Context, begin time.Time, op, table, query string, rows int, err error) {
	w.db.Logger.Trace(ctx, begin, func() (string, int64) {
		if i := strings.Index(query, " VALUES ("); i >= 0 {
			query = fmt.Sprintf("%s VALUES /* %d rows */ ...", query[:i], rows)
		}
		return query, int64(rows)
	}, err)
	if w.tracer == nil {
		return
	}
	_, span := w.tracer.Start(ctx, op+" "+table, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(begin),
		trace.WithAttributes(attribute.String("db.operation.name", op), attribute.String("db.collection.name", table),
			attribute.Int("db.response.returned_rows", rows)))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// deviceRow is a device's newest report in a batch, with the oldest and the newest
// acceptance times of the device's reports in the batch.
type deviceRow struct {
	model.Report
	firstSeen, lastSeen time.Time
}

// newestPerDevice returns the newest report of each device from reports sorted by sn,
// ndate, ntime and acceptance time: the last one of each device, which is the one with
// the newest (ndate, ntime), and of equal ones the later accepted. A report that arrives
// late (an older report accepted after a newer one) moves last_seen but is not the newest.
func newestPerDevice(reports []model.Report) []deviceRow {
	out := make([]deviceRow, 0, len(reports))
	for _, r := range reports {
		if n := len(out); n > 0 && out[n-1].SN == r.SN {
			last := &out[n-1]
			last.firstSeen = minTime(last.firstSeen, r.AcceptedAt)
			last.lastSeen = maxTime(last.lastSeen, r.AcceptedAt)
			last.Report = r
			continue
		}
		out = append(out, deviceRow{Report: r, firstSeen: r.AcceptedAt, lastSeen: r.AcceptedAt})
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// retryable reports whether err is a lock conflict that a fresh attempt usually clears.
func retryable(err error) bool {
	// Deadlock and lock wait timeout.
	return isMySQLError(err, []uint16{1213, 1205}) || strings.Contains(err.Error(), "database is locked") // SQLite
}

// dialect builds the two statements for MySQL/MariaDB or SQLite.
type dialect struct {
	mysql bool
}

func dialectOf(db *gorm.DB) dialect { return dialect{mysql: db.Dialector.Name() == "mysql"} }

const statusColumns = "sn,posno,city,tyid,unum1,unum2,ndate,ntime,amount,count,line,stime,ctime,tenant,accepted_at"

const deviceColumns = "sn,tenant,city,tyid,posno,line,unum1,unum2,amount,count,ndate,ntime,stime,ctime,first_seen,last_seen"

// deviceUpdated are the columns that follow a device's newest report by (ndate, ntime).
// tenant is not one of them: a new device's row takes its first report's tenant, and
// after that only an operator moves it (PATCH /api/v1/devices/{sn}), never a report.
// MySQL evaluates ON DUPLICATE KEY UPDATE assignments in order, each seeing the columns
// assigned before it, so the ones the choice reads come last: ntime (compared with the
// old ndate), then ndate, which only ever moves to the greater date, so the choice reads
// the same for it whether ntime changed or not; last_seen, the tie-break, is assigned
// after all of them.
var deviceUpdated = strings.Split("city,tyid,posno,line,unum1,unum2,amount,count,stime,ctime,ntime,ndate", ",")

// deviceNewer is the condition, in MySQL's VALUES() form, under which the incoming report
// replaces the stored one: its (ndate, ntime) is newer, or equal and accepted no earlier
// than the device's last_seen. devices does not keep the acceptance time of the stored
// report itself, so a tie is judged against last_seen, the latest acceptance of any of
// the device's reports; equal (sn, ndate, ntime) is one report to tb_status anyway. ndate
// and ntime are fixed-width (YYYY-MM-DD, HH:MM:SS), so comparing the strings compares the
// times. The stored columns are named devices.x, so that the clause also serves the
// INSERT ... SELECT from the staging table (load.go), where a bare name is ambiguous.
const deviceNewer = "(VALUES(ndate),VALUES(ntime),VALUES(last_seen))>=(devices.ndate,devices.ntime,devices.last_seen)"

// deviceNewerSQLite is deviceNewer for SQLite, where every SET expression reads the old row.
const deviceNewerSQLite = "(excluded.ndate,excluded.ntime,excluded.last_seen)>=(devices.ndate,devices.ntime,devices.last_seen)"

func placeholders(b *strings.Builder, rows, cols int) {
	row := "(" + strings.Repeat("?,", cols-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
}

// insertStatus returns the INSERT of rs into tb_status and its arguments: on MySQL with
// the values in the text (literal.go), on SQLite as placeholders.
func (d dialect) insertStatus(rs []model.Report) (string, []any) {
	if d.mysql {
		return mysqlInsertStatus(rs), nil
	}
	var b strings.Builder
	b.Grow(64 + len(rs)*34)
	b.WriteString("INSERT INTO tb_status (" + statusColumns + ") VALUES ")
	placeholders(&b, len(rs), 15)
	b.WriteString(" ON CONFLICT DO NOTHING")
	args := make([]any, 0, len(rs)*15)
	for i := range rs {
		r := &rs[i]
		args = append(args, r.SN, r.Pos, r.City, r.Type, r.Unum1, r.Unum2, r.NDate, r.NTime,
			r.Amount, r.Count, r.Line, r.STime, r.CTime, r.Tenant, r.AcceptedAt)
	}
	return b.String(), args
}

// upsertDevices returns the upsert of rs into devices and its arguments, as insertStatus.
func (d dialect) upsertDevices(rs []deviceRow) (string, []any) {
	if d.mysql {
		return mysqlUpsertDevices(rs), nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO devices (" + deviceColumns + ") VALUES ")
	placeholders(&b, len(rs), 16)
	b.WriteString(" ON CONFLICT(sn) DO UPDATE SET ")
	for _, c := range deviceUpdated {
		fmt.Fprintf(&b, "%s=CASE WHEN %s THEN excluded.%s ELSE devices.%s END,", c, deviceNewerSQLite, c, c)
	}
	b.WriteString("first_seen=min(devices.first_seen,excluded.first_seen),last_seen=max(devices.last_seen,excluded.last_seen)")
	args := make([]any, 0, len(rs)*16)
	for i := range rs {
		r := &rs[i]
		args = append(args, r.SN, r.Tenant, r.City, r.Type, r.Pos, r.Line, r.Unum1, r.Unum2,
			r.Amount, r.Count, r.NDate, r.NTime, r.STime, r.CTime, r.firstSeen, r.lastSeen)
	}
	return b.String(), args
}
