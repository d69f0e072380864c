package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	fixture_ "monitor/internal/fixture"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/labstack/echo/v4"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"monitor/alert"
	"monitor/backend"
	"monitor/command"
	"monitor/fleet"
	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testToken is the admin operator token of harness servers and testROToken the
// read-only one. TestLogsNeverContainSecrets looks for both.
const (
	testToken   = "test-operator-token-0123456789"
	testROToken = "ro-token-0123456789abcdef"
)

// bearer is the header pair of an admin operator request.
var bearer = []string{echo.HeaderAuthorization, "Bearer " + testToken}

// harness is one test's API server, built as app.buildAPI builds it: over a Redis db and
// a database of the test's own, enqueueing through the pipelined client, with asynqmon
// mounted and every log line captured.
type harness struct {
	t    testing.TB
	srv  *Server
	db   *gorm.DB
	rdb  *backend.Redis
	logs *logBuffer
}

// newHarness returns a harness whose server is built from the test options after
// mutate has adjusted them.
func newHarness(t testing.TB, mutate ...func(*Options)) *harness {
	t.Helper()
	h, opt := prepareHarness(t, mutate...)
	srv, err := New(opt)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	h.srv = srv
	return h
}

// prepareHarness opens the test's backends and returns a harness without a server and
// the options to build one from. The test options have the two operator tokens, a log
// directory and the test's database and Redis; mutate adjusts them, and the services it
// leaves nil (enqueuer, fleet, commands, asynqmon) are then built like production builds them.
func prepareHarness(t testing.TB, mutate ...func(*Options)) (*harness, Options) {
	t.Helper()
	db := testenv.NewDB(t).DB
	lease := testenv.NewRedis(t)
	rdb, err := backend.OpenRedis(context.Background(), backend.RedisOptions{Addr: lease.Addr, DB: lease.DB})
	if err != nil {
		t.Fatalf("open redis: %v", err)
	}
	t.Cleanup(func() {
		if err := rdb.Close(); err != nil {
			t.Errorf("close redis: %v", err)
		}
	})
	logs := &logBuffer{t: t}
	h := &harness{t: t, db: db, rdb: rdb, logs: logs}
	opt := Options{
		Logger:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DB:            db,
		Redis:         rdb.Client,
		OperatorToken: testToken,
		ReadOnlyToken: testROToken,
		LogDir:        t.TempDir(),
	}
	for _, m := range mutate {
		m(&opt)
	}
	if opt.Enqueuer == nil {
		// Shares the pipelined pool, which rdb.Close closes; asynq refuses to close it.
		opt.Enqueuer = asynq.NewClientFromRedisClient(rdb.Pipelined)
	}
	if opt.Fleet == nil {
		opt.Fleet = fleet.New(rdb.Pipelined, 1) // as app builds it
	}
	if opt.Commands == nil {
		if opt.Commands, err = command.New(opt.DB, opt.Fleet, command.Options{Logger: opt.Logger}); err != nil {
			t.Fatalf("command store: %v", err)
		}
	}
	if opt.Decommissioner == nil {
		if opt.Decommissioner, err = alert.NewDecommissioner(opt.DB, opt.Fleet, alert.DecommissionOptions{Commands: opt.Commands, Logger: opt.Logger}); err != nil {
			t.Fatalf("decommissioner: %v", err)
		}
	}
	if opt.Monitoring == nil {
		opt.Monitoring = h.asynqmon(false)
	}
	if opt.MonitoringReadOnly == nil && opt.ReadOnlyToken != "" {
		opt.MonitoringReadOnly = h.asynqmon(true)
	}
	return h, opt
}

// asynqmon returns asynqmon on the test's Redis, closed with the test.
func (h *harness) asynqmon(readOnly bool) http.Handler {
	m := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: h.rdb.ConnOpt, ReadOnly: readOnly})
	h.t.Cleanup(func() {
		if err := m.Close(); err != nil {
			h.t.Errorf("close asynqmon: %v", err)
		}
	})
	return m
}

// sub returns h bound to the subtest t, so that its helpers fail t rather than its parent.
func (h *harness) sub(t testing.TB) *harness {
	c := *h
	c.t = t
	return &c
}

// logBuffer keeps every log line for assertions and also shows it in the test output.
type logBuffer struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// do sends one request through the server's handler in-process; hdr holds header name,
// value pairs.
func (h *harness) do(method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return h.send(method, target, rd, hdr...)
}

// send is do with any body. A body other than a *strings.Reader, *bytes.Reader or
// *bytes.Buffer arrives without a Content-Length, as a streamed upload does.
func (h *harness) send(method, target string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// get sends an operator GET with the admin token.
func (h *harness) get(target string) *httptest.ResponseRecorder {
	h.t.Helper()
	return h.do(http.MethodGet, target, "", bearer...)
}

// getJSON sends an operator GET, wants 200 and decodes the body into v.
func (h *harness) getJSON(target string, v any) {
	h.t.Helper()
	rec := h.get(target)
	if rec.Code != http.StatusOK {
		h.t.Fatalf("GET %s = %d %s", target, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		h.t.Fatalf("GET %s: decode %s: %v", target, rec.Body, err)
	}
}

// postReport posts a status report with hdr (name, value pairs).
func (h *harness) postReport(body string, hdr ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	return h.do(http.MethodPost, "/open/statusUpload", body, append([]string{echo.HeaderContentType, echo.MIMEApplicationJSON}, hdr...)...)
}

// serve starts a real HTTP server for a test that needs a network connection (a
// browser, or a client's own framing of the body). It is the http.Server of
// HTTPServer, with the production timeouts, and closes with the test.
func (h *harness) serve() *httptest.Server {
	h.t.Helper()
	ts := httptest.NewUnstartedServer(h.srv.Handler())
	ts.Config = h.srv.HTTPServer("")
	ts.Start()
	h.t.Cleanup(ts.Close)
	return ts
}

// postHTTP posts body to url over the network with a Content-Type (none when empty)
// and returns the status and the decoded JSON answer.
func postHTTP(t testing.TB, url, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set(echo.HeaderContentType, contentType)
	}
	return doHTTP(t, req)
}

// doHTTP sends req over the network and returns the status and the decoded JSON answer
// (nil unless the answer is JSON).
func doHTTP(t testing.TB, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := resp.Body.Close(); err != nil {
			t.Errorf("close response: %v", err)
		}
	}()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get(echo.HeaderContentType), echo.MIMEApplicationJSON) {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("response %q is not JSON: %v", raw, err)
		}
	}
	return resp.StatusCode, m
}

// wantError checks that rec is the one JSON error shape with status and a message containing msg.
func wantError(t testing.TB, rec *httptest.ResponseRecorder, status int, msg string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d: %s", rec.Code, status, rec.Body)
	}
	var body errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body, err)
	}
	if body.Code != status || !strings.Contains(body.Msg, msg) {
		t.Fatalf("error body = %+v, want code %d and a message containing %q", body, status, msg)
	}
}

// decode decodes the JSON body of rec.
func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body, err)
	}
	return v
}

// pageJSON is one page of an operator listing as a client reads it.
type pageJSON[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor"`
}

// device returns a devices row for sn seen at lastSeen.
func device(sn string, tenant uint32, city, typ string, lastSeen time.Time) model.Device {
	return model.Device{
		SN: sn, Tenant: tenant, City: city, TyID: typ, PosNo: "P" + sn, Line: 101,
		NDate: lastSeen.Format(time.DateOnly), NTime: lastSeen.Format(time.TimeOnly),
		FirstSeen: lastSeen.Add(-24 * time.Hour).UTC().Truncate(time.Microsecond),
		LastSeen:  lastSeen.UTC().Truncate(time.Microsecond),
	}
}

// seedDevices inserts devices.
func (h *harness) seedDevices(devs ...model.Device) {
	h.t.Helper()
	if err := h.db.CreateInBatches(devs, 500).Error; err != nil {
		h.t.Fatalf("seed devices: %v", err)
	}
}

// seedReports inserts n reports of sn accepted one minute apart, the newest at newest.
func (h *harness) seedReports(sn string, n int, newest time.Time) {
	h.t.Helper()
	rows := make([]model.Status, 0, n)
	for i := n - 1; i >= 0; i-- {
		at := newest.Add(-time.Duration(i) * time.Minute).UTC().Truncate(time.Microsecond)
		rows = append(rows, model.Status{
			SN: sn, City: "0371", TyID: "B503", NDate: at.Format(time.DateOnly), NTime: at.Format(time.TimeOnly),
			Count: uint32(i), AcceptedAt: at,
		})
	}
	if err := h.db.CreateInBatches(rows, 500).Error; err != nil {
		h.t.Fatalf("seed reports: %v", err)
	}
}

// rows counts the rows of table.
func (h *harness) rows(table string) int64 {
	h.t.Helper()
	var n int64
	if err := h.db.Table(table).Count(&n).Error; err != nil {
		h.t.Fatal(err)
	}
	return n
}

// queued returns how many keys the test's Redis db holds: 0 means nothing was enqueued
// and no device was recorded.
func (h *harness) queued() int64 {
	h.t.Helper()
	n, err := h.rdb.Client.DBSize(context.Background()).Result()
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// inspector returns an asynq inspector of the test's Redis, closed with the test.
func (h *harness) inspector() *asynq.Inspector {
	insp := asynq.NewInspector(h.rdb.ConnOpt)
	h.t.Cleanup(func() {
		if err := insp.Close(); err != nil {
			h.t.Errorf("close inspector: %v", err)
		}
	})
	return insp
}

// ingestSize is the number of reports waiting in the ingest queue.
func (h *harness) ingestSize() int {
	h.t.Helper()
	insp := asynq.NewInspector(h.rdb.ConnOpt)
	defer func() {
		if err := insp.Close(); err != nil {
			h.t.Errorf("close inspector: %v", err)
		}
	}()
	queues, err := insp.Queues()
	if err != nil {
		h.t.Fatalf("list queues: %v", err)
	}
	if !slices.Contains(queues, task.QueueIngest) {
		return 0
	}
	q, err := insp.GetQueueInfo(task.QueueIngest)
	if err != nil {
		h.t.Fatalf("queue info: %v", err)
	}
	return q.Size
}

// fixture is the seed's status report; withField varies one field of it.
const fixture = fixture_.Status

var withField = fixture_.WithField

// report returns a report of sn at minute m of the day, with tenant.
func report(sn string, tenant uint32, m int) string {
	return fmt.Sprintf(`{"sn":%q,"pos":"12345678","city":"0371","id":"B503","ndate":"2021-08-07","ntime":"%02d:%02d:00","line":101,"tenant":%d}`,
		sn, m/60%24, m%60, tenant)
}
