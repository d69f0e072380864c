package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"monitor/backend"
	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// writeMode is one of the batch writer's ways of writing on MySQL: LOAD DATA (load.go),
// or the INSERTs (literal.go) it falls back to when the server refuses LOAD DATA LOCAL.
// On SQLite both are the INSERTs.
type writeMode struct {
	name   string
	noLoad bool
}

// writer returns a BatchWriter on db that writes as m says.
func (m writeMode) writer(db *gorm.DB, log *slog.Logger) *BatchWriter {
	w := NewBatchWriter(db, log)
	w.noLoad.Store(m.noLoad)
	return w
}

// newMySQLDB returns a database of the test's own on MySQL, which the test needs for what
// SQLite, the stand-in without MONITOR_TEST_REAL, lacks: why names it.
func newMySQLDB(t *testing.T, why string) *testenv.Database {
	t.Helper()
	tdb := testenv.NewDB(t)
	if tdb.DSN == "" {
		testenv.Missing(t, "%s", why)
	}
	return tdb
}

// eachWriteMode runs test once per writeMode.
func eachWriteMode(t *testing.T, test func(t *testing.T, mode writeMode)) {
	for _, m := range []writeMode{{"load", false}, {"insert", true}} {
		t.Run(m.name, func(t *testing.T) { test(t, m) })
	}
}

func report(sn, ntime string, accepted time.Time) model.Report {
	return model.Report{SN: sn, Pos: "12345678", City: "0371", Type: "B503", Unum1: 1, Unum2: 2,
		NDate: "2021-08-07", NTime: ntime, Amount: 300, Count: 4, Line: 101, STime: "05:01:01",
		CTime: "18:30:20", Tenant: 7, AcceptedAt: accepted.UTC().Truncate(time.Microsecond)}
}

func batchOf(reports ...model.Report) *asynq.Task {
	tasks := make([]*asynq.Task, len(reports))
	for i := range reports {
		tasks[i] = task.Ingest{Queues: 1, Groups: 4}.NewReportTask(&reports[i])
	}
	return task.NewStatusBatchTask(tasks)
}

// startBatchServer runs the worker's asynq server with the batch writer on r and db
// until the test ends.
func startBatchServer(t *testing.T, r *testenv.Redis, db *gorm.DB, o ServerOptions) {
	t.Helper()
	o.Logger = testenv.Logger(t)
	srv, err := NewServer(r.Opt(), o)
	if err != nil {
		t.Fatal(err)
	}
	mux := asynq.NewServeMux()
	mux.Handle(task.TypeStatusBatch, NewBatchWriter(db, o.Logger))
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

func count(t *testing.T, db *gorm.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.Table(table).Count(&n).Error; err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestBatchStoresEveryColumn(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		db := testenv.NewDB(t).DB
		w := mode.writer(db, testenv.Logger(t))
		now := time.Now()
		in := report("1C2EB08D", "18:30:30", now)
		if err := w.ProcessTask(context.Background(), batchOf(in)); err != nil {
			t.Fatal(err)
		}
		var got model.Status
		if err := db.First(&got).Error; err != nil {
			t.Fatal(err)
		}
		want := model.Status{ID: got.ID, SN: in.SN, PosNo: in.Pos, City: in.City, TyID: in.Type, Unum1: 1, Unum2: 2,
			NDate: in.NDate, NTime: in.NTime, Amount: 300, Count: 4, Line: 101, STime: in.STime, CTime: in.CTime,
			Tenant: 7, AcceptedAt: in.AcceptedAt}
		got.AcceptedAt = got.AcceptedAt.UTC()
		if got != want {
			t.Fatalf("row:\n got %+v\nwant %+v", got, want)
		}
	})
}

// TestTextValuesAreStoredAsSent: on MySQL the batch's values travel inside the SQL text
// (literal.go) or LOAD DATA's tab-separated lines (load.go). Quotes, backslashes, escape
// sequences, control characters, SQL and non-ASCII text come back from both tables
// exactly as the reports carried them. The API refuses control characters; Write is
// called directly, so that the writer's escaping does not lean on that.
func TestTextValuesAreStoredAsSent(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		db := testenv.NewDB(t).DB
		w := mode.writer(db, testenv.Logger(t))
		texts := []string{`O'Brien\`, `a"b\'c`, "'); DROP TABLE x", "长沙 é ü", `\\`, "%_*?", "\x00", `\N`, `\t\n\0`, "a\tb\nc\rd"}
		var in []model.Report
		for i, text := range texts {
			r := report(fmt.Sprintf("TEXT%02d", i), "18:30:30", time.Now())
			r.Pos, r.City, r.Type, r.STime, r.CTime = text, text, text, "x'"+string([]rune(text)[:1]), `\`
			in = append(in, r)
		}
		if _, err := w.Write(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		for _, r := range in {
			var st model.Status
			if err := db.First(&st, "sn = ?", r.SN).Error; err != nil {
				t.Fatalf("%s: %v", r.SN, err)
			}
			d := device(t, db, r.SN)
			if st.PosNo != r.Pos || st.City != r.City || st.TyID != r.Type || st.STime != r.STime || st.CTime != r.CTime ||
				d.PosNo != r.Pos || d.City != r.City || d.TyID != r.Type || d.STime != r.STime || d.CTime != r.CTime {
				t.Errorf("%s: sent pos %q city %q tyid %q stime %q ctime %q; tb_status holds %q %q %q %q %q, devices %q %q %q %q %q",
					r.SN, r.Pos, r.City, r.Type, r.STime, r.CTime, st.PosNo, st.City, st.TyID, st.STime, st.CTime,
					d.PosNo, d.City, d.TyID, d.STime, d.CTime)
			}
			if !st.AcceptedAt.Equal(r.AcceptedAt) || !d.LastSeen.Equal(r.AcceptedAt) {
				t.Errorf("%s: accepted %v, stored %v and last seen %v", r.SN, r.AcceptedAt, st.AcceptedAt, d.LastSeen)
			}
		}
		if n := count(t, db, "tb_status"); n != int64(len(in)) {
			t.Fatalf("tb_status holds %d rows, want %d", n, len(in))
		}
	})
}

func TestRedeliveredBatchIsStoredOnce(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		db := testenv.NewDB(t).DB
		w := mode.writer(db, testenv.Logger(t))
		now := time.Now()
		batch := batchOf(report("A1", "10:00:00", now), report("A1", "10:05:00", now.Add(time.Second)), report("B2", "10:00:00", now))
		for range 2 {
			if err := w.ProcessTask(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
		}
		// The same report in a later batch, as a terminal retrying after a lost answer does.
		if err := w.ProcessTask(context.Background(), batchOf(report("B2", "10:00:00", now.Add(time.Minute)))); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "tb_status"); n != 3 {
			t.Fatalf("tb_status has %d rows, want 3", n)
		}
		if n := count(t, db, "devices"); n != 2 {
			t.Fatalf("devices has %d rows, want 2", n)
		}
	})
}

func TestDevicesKeepTheNewestReport(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		db := testenv.NewDB(t).DB
		w := mode.writer(db, testenv.Logger(t))
		t0 := time.Now().Add(-time.Hour)
		older, newer := report("D1", "09:00:00", t0), report("D1", "09:10:00", t0.Add(10*time.Minute))
		newer.Unum1, newer.City = 42, "0999"
		// Newest first in one batch, then an older straggler in a later batch: neither may win over newer.
		if err := w.ProcessTask(context.Background(), batchOf(newer, older)); err != nil {
			t.Fatal(err)
		}
		stale := report("D1", "08:00:00", t0.Add(-time.Hour))
		if err := w.ProcessTask(context.Background(), batchOf(stale)); err != nil {
			t.Fatal(err)
		}
		var d model.Device
		if err := db.First(&d, "sn = ?", "D1").Error; err != nil {
			t.Fatal(err)
		}
		if d.NTime != "09:10:00" || d.Unum1 != 42 || d.City != "0999" || !d.LastSeen.Equal(newer.AcceptedAt) {
			t.Fatalf("device = %+v, want the 09:10:00 report", d)
		}
		if !d.FirstSeen.Equal(stale.AcceptedAt) {
			t.Fatalf("first_seen = %v", d.FirstSeen)
		}
		if n := count(t, db, "tb_status"); n != 3 {
			t.Fatalf("tb_status has %d rows, want 3", n)
		}
	})
}

// TestBadItemIsArchivedAfterItsBatchMatesLand checks that an undecodable item never keeps
// its batch-mates out of tb_status, and that its batch is then archived (SkipRetry) so
// an operator sees it, rather than retried or silently dropped.
func TestBadItemIsArchivedAfterItsBatchMatesLand(t *testing.T) {
	db := testenv.NewDB(t).DB
	w := NewBatchWriter(db, testenv.Logger(t))
	good := report("G1", "10:00:00", time.Now())
	trailing := report("T1", "10:00:00", time.Now())
	tasks := []*asynq.Task{
		asynq.NewTask(task.TypeStatusReport, []byte{0xff, 1, 2}), // unknown version
		task.Ingest{Queues: 1, Groups: 4}.NewReportTask(&good),
		// A whole report followed by stray bytes: not what the API writes, so not stored.
		asynq.NewTask(task.TypeStatusReport, append(task.AppendReport(nil, &trailing), 0x01, 0x02)),
	}
	if err := w.ProcessTask(context.Background(), task.NewStatusBatchTask(tasks)); !errors.Is(err, asynq.SkipRetry) ||
		!strings.Contains(err.Error(), "2 undecodable items") {
		t.Fatalf("err = %v, want SkipRetry naming the 2 undecodable items", err)
	}
	if n := count(t, db, "tb_status"); n != 1 {
		t.Fatalf("tb_status has %d rows, want 1 (only G1)", n)
	}
	// A batch with nothing decodable can never succeed: it must not be retried.
	err := w.ProcessTask(context.Background(), task.NewStatusBatchTask(tasks[:1]))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("err = %v, want SkipRetry", err)
	}
}

func TestLargeBatchSpansStatements(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		db := testenv.NewDB(t).DB
		w := mode.writer(db, testenv.Logger(t))
		reports := make([]model.Report, 2*rowsPerStatement+17)
		now := time.Now()
		for i := range reports {
			reports[i] = report(fmt.Sprintf("S%05d", i%700), fmt.Sprintf("10:%02d:%02d", i/700, i%60), now.Add(time.Duration(i)))
		}
		n, err := w.Write(context.Background(), reports)
		if err != nil {
			t.Fatal(err)
		}
		var distinct int64
		if err := db.Raw("SELECT COUNT(*) FROM (SELECT DISTINCT sn, ndate, ntime FROM tb_status) d").Scan(&distinct).Error; err != nil {
			t.Fatal(err)
		}
		if n != distinct || count(t, db, "tb_status") != distinct {
			t.Fatalf("inserted %d, distinct rows %d", n, distinct)
		}
		if d := count(t, db, "devices"); d != 700 {
			t.Fatalf("devices = %d, want 700", d)
		}
	})
}

// TestFailureMidBatchRollsBackAndRetries breaks the second statement of the batch
// transaction (the devices upsert): nothing may be half-written, and once the database
// works again the retried batch lands exactly once.
func TestFailureMidBatchRollsBackAndRetries(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		db := testenv.NewDB(t).DB
		w := mode.writer(db, testenv.Logger(t))
		batch := batchOf(report("M1", "10:00:00", time.Now()), report("M2", "10:00:00", time.Now()))
		if err := db.Exec("ALTER TABLE devices RENAME TO devices_away").Error; err != nil {
			t.Fatal(err)
		}
		if err := w.ProcessTask(context.Background(), batch); err == nil || errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("err = %v, want a retryable error", err)
		}
		if n := count(t, db, "tb_status"); n != 0 {
			t.Fatalf("tb_status has %d rows after a failed batch, want 0", n)
		}
		if err := db.Exec("ALTER TABLE devices_away RENAME TO devices").Error; err != nil {
			t.Fatal(err)
		}
		if err := w.ProcessTask(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "tb_status"); n != 2 {
			t.Fatalf("tb_status has %d rows, want 2", n)
		}
	})
}

// TestServerRetriesUntilDatabaseIsBack runs the real asynq server: reports are grouped,
// aggregated and written; while the database is broken the batch waits in retry, and it
// lands once when the database is back.
func TestServerRetriesUntilDatabaseIsBack(t *testing.T) {
	r := testenv.NewRedis(t)
	db := testenv.NewDB(t).DB
	if err := db.Exec("ALTER TABLE tb_status RENAME TO tb_status_away").Error; err != nil {
		t.Fatal(err)
	}
	startBatchServer(t, r, db, ServerOptions{GroupGracePeriod: time.Second, GroupMaxDelay: time.Second,
		ShutdownTimeout: 5 * time.Second})
	client := asynq.NewClient(r.Opt())
	defer client.Close()
	const n = 50
	for i := range n {
		rep := report(fmt.Sprintf("R%03d", i), "10:00:00", time.Now())
		if _, err := client.Enqueue(task.Ingest{Queues: 1, Groups: 16}.NewReportTask(&rep)); err != nil {
			t.Fatal(err)
		}
	}
	insp := asynq.NewInspector(r.Opt())
	defer insp.Close()
	testenv.WaitFor(t, 30*time.Second, "a batch in retry", func() bool {
		q, err := insp.GetQueueInfo(task.QueueIngest)
		return err == nil && q.Retry > 0
	})
	if err := db.Exec("ALTER TABLE tb_status_away RENAME TO tb_status").Error; err != nil {
		t.Fatal(err)
	}
	// Retried tasks wait for their backoff; run them now instead of sleeping through it.
	if _, err := insp.RunAllRetryTasks(task.QueueIngest); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "all rows", func() bool { return count(t, db, "tb_status") >= n })
	testenv.WaitFor(t, 30*time.Second, "an empty queue", func() bool {
		q, err := insp.GetQueueInfo(task.QueueIngest)
		return err == nil && q.Size == q.Completed+q.Archived && q.Archived == 0 && q.Pending == 0 && q.Active == 0
	})
	if got := count(t, db, "tb_status"); got != n {
		t.Fatalf("tb_status has %d rows, want %d", got, n)
	}
}

func TestRetrySpansAnHourLongOutage(t *testing.T) {
	for _, d := range []time.Duration{time.Minute, time.Hour, 2 * time.Hour} {
		n := BatchMaxRetry(d)
		var shortest time.Duration
		for i := range n {
			shortest += backoff(i) / 2
		}
		if shortest < d {
			t.Errorf("BatchMaxRetry(%v) = %d retries spanning at least %v only", d, n, shortest)
		}
	}
	for n := range 100 {
		if d := TaskRetryDelay(n, nil, nil); d <= 0 || d > maxRetryDelay {
			t.Fatalf("TaskRetryDelay(%d) = %v", n, d)
		}
		// A worker that died says nothing about the database: its task runs again at once.
		if d := TaskRetryDelay(n, fmt.Errorf("recoverer: %w", asynq.ErrLeaseExpired), nil); d != 0 {
			t.Fatalf("TaskRetryDelay(%d, lease expired) = %v, want 0", n, d)
		}
	}
}

// TestSNIsCaseSensitive checks that devices whose sn differ only in case are two devices:
// under a case-insensitive collation the second report would be dropped as a duplicate.
func TestSNIsCaseSensitive(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		db := testenv.NewDB(t).DB
		w := mode.writer(db, testenv.Logger(t))
		now := time.Now()
		if err := w.ProcessTask(context.Background(), batchOf(report("CaseSN", "10:00:00", now), report("casesn", "10:00:00", now))); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "tb_status"); n != 2 {
			t.Fatalf("tb_status has %d rows, want 2", n)
		}
		if n := count(t, db, "devices"); n != 2 {
			t.Fatalf("devices has %d rows, want 2", n)
		}
	})
}

// embeddedDB is the SQLite database of the embedded mode, which the tests on the real
// servers otherwise never reach: the upsert has a dialect of its own there.
func embeddedDB(t *testing.T) *gorm.DB {
	t.Helper()
	db, err := backend.OpenDatabase(context.Background(), backend.DatabaseOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := backend.CloseDatabase(db); err != nil {
			t.Errorf("close sqlite: %v", err)
		}
	})
	if err := model.Migrate(db, model.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	return db
}

// dated is a report of sn at ndate ntime with city and unum1 telling reports apart.
func dated(sn, ndate, ntime, city string, unum1 uint32, accepted time.Time) model.Report {
	r := report(sn, ntime, accepted)
	r.NDate, r.City, r.Unum1 = ndate, city, unum1
	return r
}

func device(t *testing.T, db *gorm.DB, sn string) model.Device {
	t.Helper()
	var d model.Device
	if err := db.First(&d, "sn = ?", sn).Error; err != nil {
		t.Fatalf("device %s: %v", sn, err)
	}
	return d
}

// TestDevicesKeepTheNewestByReportTime is issue 8: a report dated 2026-11-26 accepted
// after one dated 2026-11-27 is history, not the device's status. devices keeps the
// report with the newest (ndate, ntime), whichever batch brings it, while last_seen is
// the latest acceptance. Of two reports with the same (ndate, ntime) the later accepted wins.
func TestDevicesKeepTheNewestByReportTime(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		for _, tc := range []struct {
			name string
			db   func(*testing.T) *gorm.DB
		}{
			{"real", func(t *testing.T) *gorm.DB { return testenv.NewDB(t).DB }},
			{"sqlite", embeddedDB},
		} {
			t.Run(tc.name, func(t *testing.T) {
				db := tc.db(t)
				w := mode.writer(db, testenv.Logger(t))
				ctx := context.Background()
				t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
				write := func(rs ...model.Report) {
					t.Helper()
					if err := w.ProcessTask(ctx, batchOf(rs...)); err != nil {
						t.Fatal(err)
					}
				}
				check := func(sn, city string, unum1 uint32, ndate, ntime string, first, last time.Time) {
					t.Helper()
					d := device(t, db, sn)
					if d.City != city || d.Unum1 != unum1 || d.NDate != ndate || d.NTime != ntime {
						t.Errorf("%s shows %s %s city %s unum1 %d, want %s %s city %s unum1 %d",
							sn, d.NDate, d.NTime, d.City, d.Unum1, ndate, ntime, city, unum1)
					}
					if !d.FirstSeen.Equal(first) || !d.LastSeen.Equal(last) {
						t.Errorf("%s first_seen %v last_seen %v, want %v %v", sn, d.FirstSeen, d.LastSeen, first, last)
					}
				}

				// Across two batches: the 27th, then the late 26th.
				write(dated("X1", "2026-11-27", "09:00:00", "NEW", 27, t0))
				write(dated("X1", "2026-11-26", "23:59:59", "OLD", 26, t0.Add(time.Minute)))
				check("X1", "NEW", 27, "2026-11-27", "09:00:00", t0, t0.Add(time.Minute))
				// A later time on the same day wins, and a later day wins over a later clock.
				write(dated("X1", "2026-11-27", "10:00:00", "NEWER", 28, t0.Add(time.Second)))
				check("X1", "NEWER", 28, "2026-11-27", "10:00:00", t0, t0.Add(time.Minute))
				write(dated("X1", "2026-11-28", "08:00:00", "NEXT", 29, t0.Add(2*time.Second)))
				check("X1", "NEXT", 29, "2026-11-28", "08:00:00", t0, t0.Add(time.Minute))
				// The same (ndate, ntime) accepted later wins; accepted earlier does not.
				write(dated("X1", "2026-11-28", "08:00:00", "EARLY", 30, t0.Add(time.Second)))
				check("X1", "NEXT", 29, "2026-11-28", "08:00:00", t0, t0.Add(time.Minute))
				write(dated("X1", "2026-11-28", "08:00:00", "AGAIN", 31, t0.Add(2*time.Minute)))
				check("X1", "AGAIN", 31, "2026-11-28", "08:00:00", t0, t0.Add(2*time.Minute))

				// Within one batch: the late 26th is accepted last.
				write(dated("Y1", "2026-11-27", "09:00:00", "NEW", 27, t0),
					dated("Y1", "2026-11-26", "23:59:59", "OLD", 26, t0.Add(time.Minute)))
				check("Y1", "NEW", 27, "2026-11-27", "09:00:00", t0, t0.Add(time.Minute))
				// Within one batch, a tie goes to the later accepted.
				write(dated("Z1", "2026-11-27", "09:00:00", "LATE", 2, t0.Add(time.Second)),
					dated("Z1", "2026-11-27", "09:00:00", "EARLY", 1, t0))
				check("Z1", "LATE", 2, "2026-11-27", "09:00:00", t0, t0.Add(time.Second))
			})
		}
	})
}

// TestReportNeverMovesADevice is issue 8 item 7: a newer report naming another tenant
// rewrote devices.tenant. A device's row keeps the tenant it was created with; only an
// operator moves it. The report itself is still history under the tenant it named.
func TestReportNeverMovesADevice(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		db := testenv.NewDB(t).DB
		w := mode.writer(db, testenv.Logger(t))
		t0 := time.Now().Add(-time.Hour)
		first := report("D1", "09:00:00", t0)
		first.Tenant = 0
		if err := w.ProcessTask(context.Background(), batchOf(first)); err != nil {
			t.Fatal(err)
		}
		other := report("D1", "09:10:00", t0.Add(10*time.Minute))
		other.Tenant, other.Unum1 = 7, 42
		if err := w.ProcessTask(context.Background(), batchOf(other)); err != nil {
			t.Fatal(err)
		}
		var d model.Device
		if err := db.First(&d, "sn = ?", "D1").Error; err != nil {
			t.Fatal(err)
		}
		if d.Tenant != 0 {
			t.Fatalf("devices.tenant = %d after a report naming tenant 7, want 0", d.Tenant)
		}
		if d.NTime != "09:10:00" || d.Unum1 != 42 {
			t.Fatalf("device = %+v, want the newer report's other columns", d)
		}
		var s model.Status
		if err := db.First(&s, "sn = ? AND ntime = ?", "D1", "09:10:00").Error; err != nil || s.Tenant != 7 {
			t.Fatalf("history row: tenant %d, %v; want 7", s.Tenant, err)
		}
	})
}

// writesSoFar is the number of batch writes (transactions) the writer has completed.
func writesSoFar(t *testing.T) uint64 {
	t.Helper()
	var m dto.Metric
	if err := batchReports.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// TestConcurrentBatchesAreWrittenTogether runs many batch tasks at once: every report is
// stored once, in far fewer transactions than tasks.
func TestConcurrentBatchesAreWrittenTogether(t *testing.T) {
	db := testenv.NewDB(t).DB
	w := NewBatchWriter(db, testenv.Logger(t))
	const tasks, each = 40, 5
	before := writesSoFar(t)
	now := time.Now()
	start := make(chan struct{})
	errs := make(chan error, tasks)
	var wg sync.WaitGroup
	for i := range tasks {
		wg.Go(func() {
			var rs []model.Report
			for j := range each {
				rs = append(rs, report(fmt.Sprintf("J%03d", i), fmt.Sprintf("10:00:%02d", j), now))
			}
			<-start
			errs <- w.ProcessTask(t.Context(), batchOf(rs...))
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, db, "tb_status"); n != tasks*each {
		t.Fatalf("tb_status has %d rows, want %d", n, tasks*each)
	}
	if n := count(t, db, "devices"); n != tasks {
		t.Fatalf("devices has %d rows, want %d", n, tasks)
	}
	writes := writesSoFar(t) - before
	if writes == 0 || writes > tasks/2 {
		t.Fatalf("%d transactions for %d tasks", writes, tasks)
	}
	t.Logf("%d tasks in %d transactions", tasks, writes)
}

// TestJointWriteIsolatesARefusedBatch writes three batches together, the middle one with
// a serial number too long for its column: MySQL refuses the joint write, and each batch
// is then written on its own, so only the refused one fails.
func TestJointWriteIsolatesARefusedBatch(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode writeMode) {
		tdb := newMySQLDB(t, "SQLite does not enforce column lengths")
		w := mode.writer(tdb.DB, testenv.Logger(t))
		now := time.Now()
		batches := []*batchWrite{
			{reports: []model.Report{report("GOOD1", "10:00:00", now)}, done: make(chan struct{})},
			{reports: []model.Report{report(strings.Repeat("L", 200), "10:00:00", now)}, done: make(chan struct{})},
			{reports: []model.Report{report("GOOD2", "10:00:00", now)}, done: make(chan struct{})},
		}
		w.writeBatches(t.Context(), batches, 3)
		for i, b := range batches {
			<-b.done
			if (b.err != nil) != (i == 1) {
				t.Fatalf("batch %d: err %v", i, b.err)
			}
		}
		if n := count(t, tdb.DB, "tb_status"); n != 2 {
			t.Fatalf("tb_status has %d rows, want 2", n)
		}
	})
}

// TestJointWriterHandsOverUnderABacklog keeps the writer busy for far longer than any
// one task's deadline: a new batch task starts every 2 ms for 3 s (10,000 reports a
// second), each with a deadline of 1 s, so batches wait whenever a write ends. A writer writes only until its own
// batch is stored and then hands over, so none writes past its deadline: every task
// succeeds and every report is stored.
func TestJointWriterHandsOverUnderABacklog(t *testing.T) {
	db := testenv.NewDB(t).DB
	w := NewBatchWriter(db, testenv.Logger(t))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	now := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); <-tick.C {
		var rs []model.Report
		for j := range 20 {
			rs = append(rs, report(fmt.Sprintf("H%06d", sent/20), fmt.Sprintf("10:00:%02d", j), now))
		}
		sent += len(rs)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if err := w.ProcessTask(ctx, batchOf(rs...)); err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d tasks failed, the first: %v", len(failures), sent/20, failures[0])
	}
	if n := count(t, db, "tb_status"); n != int64(sent) {
		t.Fatalf("tb_status has %d rows, want %d", n, sent)
	}
	t.Logf("%d reports in %d tasks", sent, sent/20)
}

// TestLastAttemptsAreArchivedMerged fails 40 one-report batch tasks until their retries
// run out (the table is away): they are archived merged into a few tasks, holding every
// report, not as 40 (asynq keeps at most 10,000 archived tasks per queue). Once the table
// is back, running the archive stores every report once.
func TestLastAttemptsAreArchivedMerged(t *testing.T) {
	r := testenv.NewRedis(t)
	db := testenv.NewDB(t).DB
	if err := db.Exec("ALTER TABLE tb_status RENAME TO tb_status_away").Error; err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	srv, err := NewServer(r.Opt(), ServerOptions{BatchRetryFor: time.Second, ShutdownTimeout: 5 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(r.Opt())
	defer client.Close()
	mux := asynq.NewServeMux()
	mux.Handle(task.TypeStatusBatch, NewBatchWriter(db, log).Consolidating(client))
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	const n = 40
	for i := range n {
		rep := report(fmt.Sprintf("M%03d", i), "10:00:00", time.Now())
		if _, err := client.Enqueue(batchOf(rep), asynq.Queue(task.QueueIngest), asynq.MaxRetry(BatchMaxRetry(time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	insp := asynq.NewInspector(r.Opt())
	defer insp.Close()
	var archived []*asynq.TaskInfo
	testenv.WaitFor(t, 60*time.Second, "every batch archived", func() bool {
		q, err := insp.GetQueueInfo(task.QueueIngest)
		if err != nil || q.Archived == 0 || q.Pending+q.Active+q.Retry+q.Scheduled > 0 {
			return false
		}
		archived, err = insp.ListArchivedTasks(task.QueueIngest, asynq.PageSize(1000))
		return err == nil
	})
	seen := map[string]int{}
	for _, ti := range archived {
		if err := task.SplitBatch(ti.Payload, func(item []byte) {
			r, _, err := task.DecodeReport(item)
			if err != nil {
				t.Fatal(err)
			}
			seen[r.SN]++
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != n {
		t.Fatalf("the archive holds %d of the %d reports", len(seen), n)
	}
	if len(archived) > n/4 {
		t.Fatalf("%d archived tasks for %d one-report batches: not merged", len(archived), n)
	}
	t.Logf("%d one-report batches archived as %d tasks", n, len(archived))
	if err := db.Exec("ALTER TABLE tb_status_away RENAME TO tb_status").Error; err != nil {
		t.Fatal(err)
	}
	if _, err := insp.RunAllArchivedTasks(task.QueueIngest); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "every row", func() bool { return count(t, db, "tb_status") >= n })
	if got := count(t, db, "tb_status"); got != n {
		t.Fatalf("tb_status has %d rows, want %d", got, n)
	}
}
