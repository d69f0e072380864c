package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"monitor/internal/redispipe"
	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"
	"monitor/worker"
)

func TestStatusUploadRejectsBadInput(t *testing.T) {
	h := newHarness(t)
	url := h.serve().URL + "/open/statusUpload"
	const jsonCT = "application/json"
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		field       string // the message must name it
	}{
		{"truncated JSON", jsonCT, fixture[:57], http.StatusBadRequest, "bad JSON"},
		{"missing sn", jsonCT, withField("sn", ""), http.StatusBadRequest, "sn"},
		{"sn with quotes and SQL", jsonCT, withField("sn", `"1'; DROP TABLE tb_status; --"`), http.StatusBadRequest, "sn"},
		{"sn too long", jsonCT, withField("sn", `"`+strings.Repeat("9", 33)+`"`), http.StatusBadRequest, "sn"},
		{"bad date", jsonCT, withField("ndate", `"2021-02-31"`), http.StatusBadRequest, "ndate"},
		{"bad time", jsonCT, withField("ntime", `"18:61:00"`), http.StatusBadRequest, "ntime"},
		{"negative number", jsonCT, withField("unum1", "-3"), http.StatusBadRequest, "unum1"},
		{"number over 32 bits", jsonCT, withField("count", "4294967296"), http.StatusBadRequest, "count"},
		{"string for a number", jsonCT, withField("amount", `"12"`), http.StatusBadRequest, "amount"},
		{"body over the limit", jsonCT, strings.Replace(fixture, "{", `{"pad":"`+strings.Repeat("x", 70<<10)+`",`, 1),
			http.StatusRequestEntityTooLarge, "limit"},
		{"wrong content type", "text/plain", fixture, http.StatusBadRequest, "Content-Type"},
		{"form content type", "application/x-www-form-urlencoded", fixture, http.StatusBadRequest, "Content-Type"},
		{"empty body", jsonCT, "", http.StatusBadRequest, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.sub(t)
			status, body := postHTTP(t, url, tt.contentType, tt.body)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (%v)", status, tt.status, body)
			}
			msg, _ := body["msg"].(string)
			if code, _ := body["code"].(float64); code == 0 || !strings.Contains(msg, tt.field) {
				t.Fatalf("body = %v, want a non-zero code and a msg naming %q", body, tt.field)
			}
			if n := h.queued(); n != 0 {
				t.Fatalf("a rejected report left %d keys in Redis", n)
			}
			if n := h.rows("tb_status") + h.rows("devices"); n != 0 {
				t.Fatalf("a rejected report wrote %d rows", n)
			}
		})
	}
}

func TestStatusUploadAcceptsAndEnqueues(t *testing.T) {
	h := newHarness(t)
	url := h.serve().URL + "/open/statusUpload"
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", ""} {
		status, body := postHTTP(t, url, ct, fixture)
		if status != http.StatusOK {
			t.Fatalf("Content-Type %q: status = %d (%v)", ct, status, body)
		}
		if body["code"] != 0.0 || body["msg"] != "ok" || body["cmd"] != 0.0 {
			t.Fatalf("body = %v", body)
		}
		if _, ok := body["cmdId"]; !ok {
			t.Fatalf("body = %v lacks cmdId", body)
		}
	}
	// The three reports went one at a time, so each is a batch task of its own, pending.
	tasks, err := h.inspector().ListPendingTasks(task.QueueIngest)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 3 {
		t.Fatalf("queue %s holds %d tasks, want 3", task.QueueIngest, len(tasks))
	}
	for _, ti := range tasks {
		if ti.Type != task.TypeStatusBatch {
			t.Fatalf("task type %q, want %q", ti.Type, task.TypeStatusBatch)
		}
		var items [][]byte
		if err := task.SplitBatch(ti.Payload, func(item []byte) { items = append(items, item) }); err != nil || len(items) != 1 {
			t.Fatalf("batch of %d items (%v), want 1", len(items), err)
		}
		r, rest, err := task.DecodeReport(items[0])
		if err != nil || len(rest) != 0 {
			t.Fatalf("decode: %v, %d bytes left", err, len(rest))
		}
		if r.SN != "1C2EB08D" || time.Since(r.AcceptedAt) > time.Minute || r.AcceptedAt.After(time.Now()) {
			t.Fatalf("queued report = %+v", r)
		}
	}
}

func TestStatusUploadAnswers503WhenRedisIsDown(t *testing.T) {
	// The production enqueue path, pointed at a Redis that is not there.
	down := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() {
		if err := down.Close(); err != nil {
			t.Errorf("close client: %v", err)
		}
	})
	h := newHarness(t, func(o *Options) { o.Enqueuer = asynq.NewClientFromRedisClient(redispipe.New(down)) })
	rec := h.postReport(fixture)
	wantError(t, rec, http.StatusServiceUnavailable, "queue unavailable")
	if strings.Contains(rec.Body.String(), "127.0.0.1") {
		t.Fatalf("the answer leaks internals: %s", rec.Body)
	}
	if n := h.queued(); n != 0 {
		t.Fatalf("a refused report left %d keys in Redis", n)
	}
}

// TestEndToEnd runs HTTP → Redis → aggregation → worker → database for the seed fixture.
func TestEndToEnd(t *testing.T) {
	h := newHarness(t)
	url := h.serve().URL + "/open/statusUpload"
	srv, err := worker.NewServer(h.rdb.ConnOpt, worker.ServerOptions{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	mux := asynq.NewServeMux()
	mux.Handle(task.TypeStatusBatch, worker.NewBatchWriter(h.db, testenv.Logger(t)))
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()

	before := time.Now().UTC()
	for range 2 { // the second is a terminal repeating the same report
		if status, body := postHTTP(t, url, "application/json", fixture); status != http.StatusOK {
			t.Fatalf("status = %d (%v)", status, body)
		}
	}
	later := withField("ntime", `"18:40:30"`)
	later = strings.Replace(later, `"unum1":0`, `"unum1":5`, 1)
	if status, body := postHTTP(t, url, "application/json", later); status != http.StatusOK {
		t.Fatalf("status = %d (%v)", status, body)
	}
	for i := range 20 { // other devices share the groups
		other := withField("sn", fmt.Sprintf(`"OTHER%02d"`, i))
		if status, _ := postHTTP(t, url, "application/json", other); status != http.StatusOK {
			t.Fatalf("status = %d", status)
		}
	}
	after := time.Now().UTC()
	testenv.WaitFor(t, 30*time.Second, "22 rows", func() bool { return h.rows("tb_status") >= 22 })
	// Give a wrongly duplicated batch the chance to land before counting.
	insp := h.inspector()
	testenv.WaitFor(t, 30*time.Second, "an idle queue", func() bool {
		q, err := insp.GetQueueInfo(task.QueueIngest)
		return err == nil && q.Pending+q.Active+q.Aggregating+q.Retry == 0
	})
	if n := h.rows("tb_status"); n != 22 {
		t.Fatalf("tb_status has %d rows, want 22", n)
	}

	var rows []model.Status
	if err := h.db.Where("sn = ?", "1C2EB08D").Order("ntime").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("fixture device has %d rows, want 2", len(rows))
	}
	got := rows[0]
	if got.AcceptedAt.Before(before.Truncate(time.Microsecond)) || got.AcceptedAt.After(after) {
		t.Fatalf("accepted_at %v not within the request window [%v, %v]", got.AcceptedAt, before, after)
	}
	want := model.Status{ID: got.ID, SN: "1C2EB08D", PosNo: "12345678", City: "0371", TyID: "B503", NDate: "2021-08-07",
		NTime: "18:30:30", Line: 101, STime: "05:01:01", CTime: "18:30:20", AcceptedAt: got.AcceptedAt}
	if got != want {
		t.Fatalf("stored row:\n got %+v\nwant %+v", got, want)
	}

	var d model.Device
	if err := h.db.First(&d, "sn = ?", "1C2EB08D").Error; err != nil {
		t.Fatal(err)
	}
	if d.NTime != "18:40:30" || d.Unum1 != 5 || !d.LastSeen.Equal(rows[1].AcceptedAt) {
		t.Fatalf("device = %+v, want the 18:40:30 report", d)
	}
	if n := h.rows("devices"); n != 21 {
		t.Fatalf("devices = %d, want 21", n)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	h := newHarness(t)
	base := h.serve().URL
	for _, path := range []string{"/healthz", "/readyz"} {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if status, body := doHTTP(t, req); status != http.StatusOK {
			t.Fatalf("%s = %d %v", path, status, body)
		}
	}
	// With the database gone, the process is alive but not ready.
	sqlDB, err := h.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlDB.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, base+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	status, body := doHTTP(t, req)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the database closed = %d %v", status, body)
	}
	if checks, _ := body["checks"].(map[string]any); checks["database"] != "unreachable" || checks["redis"] != "ok" {
		t.Fatalf("checks = %v", body)
	}
}

func TestMonitoringNeedsOperatorToken(t *testing.T) {
	h := newHarness(t)
	base := h.serve().URL
	// get does not follow redirects, so a 401 is seen as such.
	get := func(t *testing.T, path string, auth func(*http.Request)) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, string(body)
	}
	tests := []struct {
		name   string
		path   string
		auth   func(*http.Request)
		status int
	}{
		{"no credentials", "/monitoring/", nil, http.StatusUnauthorized},
		{"wrong bearer", "/monitoring/", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, http.StatusUnauthorized},
		{"wrong basic", "/monitoring/", func(r *http.Request) { r.SetBasicAuth("admin", "nope") }, http.StatusUnauthorized},
		{"api deep path", "/monitoring/api/queues", nil, http.StatusUnauthorized},
		{"bearer", "/monitoring/", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) }, http.StatusOK},
		{"basic", "/monitoring/", func(r *http.Request) { r.SetBasicAuth("anyone", testToken) }, http.StatusOK},
		{"queues API", "/monitoring/api/queues", func(r *http.Request) { r.SetBasicAuth("ops", testToken) }, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := get(t, tt.path, tt.auth)
			if status != tt.status {
				t.Fatalf("status = %d, want %d: %s", status, tt.status, body)
			}
			if status == http.StatusUnauthorized {
				if !strings.HasPrefix(header.Get("WWW-Authenticate"), "Basic") {
					t.Fatalf("401 without a Basic challenge: %v", header)
				}
				if strings.Contains(body, "<html") {
					t.Fatal("asynqmon served without credentials")
				}
			}
			if tt.path == "/monitoring/" && status == http.StatusOK && !strings.Contains(body, "/monitoring/") {
				t.Fatalf("not asynqmon's page: %.200s", body)
			}
		})
	}
}

func TestOKReplyIsTheEncodedReply(t *testing.T) {
	want, err := json.Marshal(statusReply{Msg: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if string(okReply) != string(want) {
		t.Fatalf("okReply = %s, want %s", okReply, want)
	}
}

// TestStatusUploadBodyLimitIsMaxBodyBytes: a report may be as large as MaxBodyBytes even
// when that is over the 1 MiB limit of the other routes, and one byte more is a 413,
// whether the body comes with a Content-Length or streamed without one (defect 4).
func TestStatusUploadBodyLimitIsMaxBodyBytes(t *testing.T) {
	const limit = 2 << 20
	h := newHarness(t, func(o *Options) { o.MaxBodyBytes = limit })
	// padded returns the fixture padded to size bytes with an unknown field, which the
	// report's decoding ignores.
	padded := func(size int) string {
		const pre = `{"pad":"`
		pad := size - len(fixture) - len(pre) - len(`",`) + len("{")
		body := pre + strings.Repeat("x", pad) + `",` + fixture[1:]
		if len(body) != size {
			t.Fatalf("padded body has %d bytes, want %d", len(body), size)
		}
		return body
	}
	tests := []struct {
		name     string
		size     int
		streamed bool
		status   int
	}{
		{"1.5 MiB", 3 << 19, false, http.StatusOK},
		{"1.5 MiB streamed", 3 << 19, true, http.StatusOK},
		{"the limit", limit, false, http.StatusOK},
		{"the limit streamed", limit, true, http.StatusOK},
		{"a byte over the limit", limit + 1, false, http.StatusRequestEntityTooLarge},
		{"a byte over the limit streamed", limit + 1, true, http.StatusRequestEntityTooLarge},
		{"2.5 MiB", 5 << 19, false, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.sub(t)
			var body io.Reader = strings.NewReader(padded(tt.size))
			if tt.streamed {
				body = io.MultiReader(body) // hides the length: no Content-Length
			}
			before := h.ingestSize()
			rec := h.send(http.MethodPost, "/open/statusUpload", body, echo.HeaderContentType, echo.MIMEApplicationJSON)
			want := before
			if tt.status == http.StatusOK {
				want++
				if rec.Code != http.StatusOK || rec.Body.String() != string(okReply) {
					t.Fatalf("status = %d %.200s, want 200 ok", rec.Code, rec.Body)
				}
			} else {
				wantError(t, rec, tt.status, "over the limit")
			}
			if got := h.ingestSize(); got != want {
				t.Fatalf("ingest queue went from %d to %d, want %d", before, got, want)
			}
		})
	}
}
