package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"monitor/model"
)

// TestBodyLimitOnEveryRoute sends a 2 MiB body with its Content-Length to every route
// and method: the log upload, with its own limit, is the only one that reads it, the
// status upload answers with its own limit (MaxBodyBytes, 64 KiB by default) and every
// other route, GETs too, with the global 1 MiB limit, before any handler or auth runs.
func TestBodyLimitOnEveryRoute(t *testing.T) {
	h := newHarness(t)
	big := strings.Repeat("x", 2<<20)
	checked := 0
	for _, r := range h.srv.echo.Routes() {
		if r.Method == echo.RouteNotFound || r.Path == "/open/logUpload" {
			continue
		}
		path := strings.NewReplacer(":sn", "A1", ":id", "1", "*", "api/queues/ingest:pause").Replace(r.Path)
		want := "Request Entity Too Large"
		if r.Path == "/open/statusUpload" {
			want = "body: 2097152 bytes is over the limit of 65536"
		}
		// No credentials: the limit answers before the operator auth would.
		rec := h.do(r.Method, path, big, echo.HeaderContentType, echo.MIMEApplicationJSON)
		if r.Method == http.MethodHead {
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("HEAD %s with 2 MiB: %d, want 413", r.Path, rec.Code)
			}
		} else {
			wantError(t, rec, http.StatusRequestEntityTooLarge, want)
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d routes checked", checked)
	}
	// The terminal route's own limit is 64 KiB, for a body without a length too.
	rec := h.postReport(`{"sn":"A","pad":"` + strings.Repeat("x", 64<<10) + `"}`)
	wantError(t, rec, http.StatusRequestEntityTooLarge, "body: 65555 bytes is over the limit of 65536")
	rec = h.send(http.MethodPost, "/open/statusUpload", io.MultiReader(strings.NewReader(`{"sn":"A","pad":"`+strings.Repeat("x", 64<<10)+`"}`)),
		echo.HeaderContentType, echo.MIMEApplicationJSON)
	wantError(t, rec, http.StatusRequestEntityTooLarge, "body: over the limit of 65536 bytes")
	// With credentials a GET with a body is cut off the same way.
	wantError(t, h.do(http.MethodGet, "/api/v1/devices", big, bearer...), http.StatusRequestEntityTooLarge, "Request Entity Too Large")
	if n := h.queued(); n != 0 {
		t.Fatalf("refused bodies left %d keys in Redis", n)
	}
}

// TestHTTPServerTimeouts checks the http.Server that the process serves with: its
// address and handler, and the timeouts and header limit that keep slow or greedy
// clients from holding connections.
func TestHTTPServerTimeouts(t *testing.T) {
	h := newHarness(t)
	hs := h.srv.HTTPServer("127.0.0.1:8888")
	if hs.Addr != "127.0.0.1:8888" || hs.Handler != h.srv.Handler() || hs.ErrorLog == nil {
		t.Fatalf("addr %q, handler %T, error log %v", hs.Addr, hs.Handler, hs.ErrorLog)
	}
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"ReadHeaderTimeout", hs.ReadHeaderTimeout, 5 * time.Second},
		{"ReadTimeout", hs.ReadTimeout, 30 * time.Second},
		{"WriteTimeout", hs.WriteTimeout, 60 * time.Second},
		{"IdleTimeout", hs.IdleTimeout, 120 * time.Second},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if hs.MaxHeaderBytes != 32<<10 {
		t.Errorf("MaxHeaderBytes = %d, want %d", hs.MaxHeaderBytes, 32<<10)
	}
}

// TestSlowClientIsCutOff opens a connection that never finishes its headers: the server
// closes it without an answer once ReadHeaderTimeout (shortened here) has passed, while
// a normal client is served.
func TestSlowClientIsCutOff(t *testing.T) {
	h := newHarness(t)
	hs := h.srv.HTTPServer("")
	hs.ReadHeaderTimeout = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	t.Cleanup(func() {
		if err := hs.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})

	// The server starts the header timeout after it accepts, so after dialling starts.
	dialled := time.Now()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Errorf("close connection: %v", err)
		}
	})
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// The deadline only bounds a broken test; the server closes far sooner.
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(conn)
	held := time.Since(dialled)
	if err != nil {
		t.Fatalf("after %v: %v, want the server to close the connection", held, err)
	}
	if len(rest) != 0 {
		t.Fatalf("the slow request was answered: %q", rest)
	}
	if held < hs.ReadHeaderTimeout || held > 5*time.Second {
		t.Fatalf("the server closed the slow connection after %v, want %v (and well before the production 5s)", held, hs.ReadHeaderTimeout)
	}

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
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
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Fatalf("a normal client got %d %s", resp.StatusCode, body)
	}
}

func TestPanicAnswersJSON500WithRequestID(t *testing.T) {
	h := newHarness(t)
	h.srv.echo.GET("/boom", func(echo.Context) error { panic("kaboom") })
	rec := h.do(http.MethodGet, "/boom", "")
	wantError(t, rec, http.StatusInternalServerError, "internal error")
	if strings.Contains(rec.Body.String(), "kaboom") {
		t.Fatalf("the panic leaked to the client: %s", rec.Body)
	}
	id := rec.Header().Get(echo.HeaderXRequestID)
	logs := h.logs.String()
	if id == "" || !strings.Contains(logs, "request_id="+id) {
		t.Fatalf("request id %q not in the logs:\n%s", id, logs)
	}
	if !strings.Contains(logs, "panic in handler") || !strings.Contains(logs, "kaboom") || !strings.Contains(logs, "harden_test.go") {
		t.Fatalf("the log lacks the panic and its stack:\n%s", logs)
	}
	// The server goes on serving.
	if rec := h.do(http.MethodGet, "/healthz", ""); rec.Code != http.StatusOK {
		t.Fatalf("after the panic: %d", rec.Code)
	}
}

func TestRequestIDOnResponsesAndErrorLogs(t *testing.T) {
	// A database that refuses connections: the handler fails with a 503 and logs why.
	down, err := gorm.Open(gormmysql.New(gormmysql.Config{DSN: "root@tcp(127.0.0.1:1)/x?timeout=1s", SkipInitializeWithVersion: true}),
		&gorm.Config{Logger: logger.Discard, DisableAutomaticPing: true})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := down.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sqlDB.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	h := newHarness(t, func(o *Options) { o.DB = down })

	rec := h.get("/api/v1/devices")
	wantError(t, rec, http.StatusServiceUnavailable, "database unavailable")
	id := rec.Header().Get(echo.HeaderXRequestID)
	if id == "" || !strings.Contains(h.logs.String(), "request_id="+id) {
		t.Fatalf("request id %q not in the error log:\n%s", id, h.logs)
	}
	if strings.Contains(rec.Body.String(), "127.0.0.1:1") {
		t.Fatalf("the cause leaked to the client: %s", rec.Body)
	}
	// A client's own request id is kept, so a terminal or proxy can correlate.
	rec = h.do(http.MethodGet, "/healthz", "", echo.HeaderXRequestID, "abc-123")
	if got := rec.Header().Get(echo.HeaderXRequestID); got != "abc-123" {
		t.Fatalf("request id = %q", got)
	}
	for _, target := range []string{"/healthz", "/api/v1/devices"} {
		if h.do(http.MethodGet, target, "").Header().Get(echo.HeaderXRequestID) == "" {
			t.Fatalf("%s: no request id", target)
		}
	}
}

// TestLogsNeverContainSecrets exercises wrong and right operator tokens, wrong and right
// device keys, failures and panics, then searches every log line and response for them.
func TestLogsNeverContainSecrets(t *testing.T) {
	h := newHarness(t, func(o *Options) { tenantKeys(o); o.DeviceRate, o.DeviceBurst = 0.001, 2 })
	h.srv.echo.GET("/api/v1/boom", func(echo.Context) error { panic("kaboom") })
	var bodies strings.Builder
	keep := func(rec interface {
		Result() *http.Response
	}) {
		res := rec.Result()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		bodies.Write(b)
		for k, vs := range res.Header {
			bodies.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
	}
	for _, hdr := range []string{
		"Bearer " + testToken, "Bearer " + testToken + "x", "Bearer " + testROToken + "x",
		"Bearer " + keyTenant1, basic("op", testToken+"x"), basic(testToken, testToken+"y"),
	} {
		for _, target := range []string{"/api/v1/devices", "/api/v1/devices/NOPE", "/api/v1/boom", "/monitoring/api/queues", "/fleet"} {
			keep(h.do(http.MethodGet, target, "", "Authorization", hdr))
		}
		keep(h.do(http.MethodPost, "/monitoring/api/queues/ingest:pause", "", "Authorization", hdr))
	}
	for i, key := range []string{keyTenant1, keyTenant2, keyTenant1 + "x", "", testToken} {
		for _, tenant := range []uint32{1, 2, 9} {
			keep(h.postReport(report("S"+string(rune('A'+i)), tenant, int(tenant)), "X-Device-Key", key))
		}
	}
	// Keys that do not parse are reported without the keys.
	for _, keys := range []string{"1:" + keyTenant1 + ",x:" + keyTenant2, "1:" + keyTenant1 + ",1:" + keyTenant2, keyTenant1} {
		if _, err := model.ParseTenantKeys(keys); err == nil {
			t.Fatalf("keys %q parsed", keys)
		} else {
			bodies.WriteString(err.Error())
		}
	}

	all := h.logs.String() + bodies.String()
	if !strings.Contains(all, "401") || !strings.Contains(all, "panic in handler") {
		t.Fatalf("the exercise did not happen:\n%s", all)
	}
	for _, secret := range []string{testToken, testROToken, keyTenant1, keyTenant2, testToken[:10]} {
		if strings.Contains(all, secret) {
			sc := bufio.NewScanner(strings.NewReader(all))
			for sc.Scan() {
				if strings.Contains(sc.Text(), secret) {
					t.Errorf("secret %q in: %s", secret, sc.Text())
				}
			}
		}
	}
}
