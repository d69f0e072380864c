package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"monitor/config"
	"monitor/internal/testenv"
	"monitor/model"
)

// testROToken is the read-only operator token of env servers; testToken (main_test.go)
// is the admin one. TestLogsNeverContainSecrets looks for both.
const testROToken = "ro-token-0123456789abcdef"

// env is one test's API server over its own Redis db and database, with its logs captured.
type env struct {
	t     testing.TB
	cfg   *config.Config
	srv   *Server
	db    *gorm.DB
	redis *testenv.Redis
	logs  *logBuffer
}

// newEnv starts a Server for t; mutate adjusts the default test config.
func newEnv(t testing.TB, mutate func(*config.Config)) *env {
	t.Helper()
	cfg := config.Default()
	cfg.OperatorToken = testToken
	cfg.ReadOnlyToken = testROToken
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	r := testenv.NewRedis(t)
	d := testenv.NewDB(t)
	logs := &logBuffer{t: t}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	queue := asynq.NewClient(r.Opt())
	t.Cleanup(func() {
		if err := queue.Close(); err != nil {
			t.Errorf("close queue: %v", err)
		}
	})
	srv := New(cfg, log, queue, r.Opt(), r.Client, d.DB)
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return &env{t: t, cfg: cfg, srv: srv, db: d.DB, redis: r, logs: logs}
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

// do sends one request through the server's handler; hdr holds header name, value pairs.
func (e *env) do(method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// get sends an operator GET with the admin token.
func (e *env) get(target string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(http.MethodGet, target, "", "Authorization", "Bearer "+testToken)
}

// getJSON sends an operator GET, wants 200 and decodes the body into v.
func (e *env) getJSON(target string, v any) {
	e.t.Helper()
	rec := e.get(target)
	if rec.Code != http.StatusOK {
		e.t.Fatalf("GET %s = %d %s", target, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		e.t.Fatalf("GET %s: decode %s: %v", target, rec.Body, err)
	}
}

// wantError checks that rec is the one JSON error shape with status and a message containing msg.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, msg string) {
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
func (e *env) seedDevices(devs ...model.Device) {
	e.t.Helper()
	if err := e.db.CreateInBatches(devs, 500).Error; err != nil {
		e.t.Fatalf("seed devices: %v", err)
	}
}

// seedReports inserts n reports of sn accepted one minute apart, the newest at newest.
func (e *env) seedReports(sn string, n int, newest time.Time) {
	e.t.Helper()
	rows := make([]model.Status, 0, n)
	for i := n - 1; i >= 0; i-- {
		at := newest.Add(-time.Duration(i) * time.Minute).UTC().Truncate(time.Microsecond)
		rows = append(rows, model.Status{
			SN: sn, City: "0371", TyID: "B503", NDate: at.Format(time.DateOnly), NTime: at.Format(time.TimeOnly),
			Count: uint32(i), AcceptedAt: at,
		})
	}
	if err := e.db.CreateInBatches(rows, 500).Error; err != nil {
		e.t.Fatalf("seed reports: %v", err)
	}
}

// ingestSize is the number of reports waiting in the ingest queue.
func (e *env) ingestSize() int {
	e.t.Helper()
	insp := asynq.NewInspector(e.redis.Opt())
	defer func() {
		if err := insp.Close(); err != nil {
			e.t.Errorf("close inspector: %v", err)
		}
	}()
	queues, err := insp.Queues()
	if err != nil {
		e.t.Fatalf("list queues: %v", err)
	}
	if !slices.Contains(queues, "ingest") {
		return 0
	}
	q, err := insp.GetQueueInfo("ingest")
	if err != nil {
		e.t.Fatalf("queue info: %v", err)
	}
	return q.Size
}

// report returns the fixture report for sn at minute m of the day, with tenant.
func report(sn string, tenant uint32, m int) string {
	return fmt.Sprintf(`{"sn":%q,"pos":"12345678","city":"0371","id":"B503","ndate":"2021-08-07","ntime":"%02d:%02d:00","line":101,"tenant":%d}`,
		sn, m/60%24, m%60, tenant)
}

// postReport posts a report with hdr (name, value pairs).
func (e *env) postReport(body string, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(http.MethodPost, "/open/statusUpload", body, append([]string{"Content-Type", "application/json"}, hdr...)...)
}
