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

func TestBodyLimitOnEveryRoute(t *testing.T) {
	h := newHarness(t)
	big := strings.Repeat("x", 2<<20)
	for _, r := range h.srv.echo.Routes() {
		if r.Method == echo.RouteNotFound || r.Method == http.MethodGet || r.Method == http.MethodHead ||
			r.Path == "/open/logUpload" { // the log upload has its own, larger limit
			continue
		}
		path := strings.NewReplacer(":sn", "A1", ":id", "1", "*", "api/queues/ingest:pause").Replace(r.Path)
		rec := h.do(r.Method, path, big, "Authorization", "Bearer "+testToken, "Content-Type", "application/json")
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s with 2 MiB: %d %.100s", r.Method, r.Path, rec.Code, rec.Body)
		}
	}
	// The terminal route's own limit is 64 KiB.
	rec := h.postReport(`{"sn":"A","pad":"` + strings.Repeat("x", 64<<10) + `"}`)
	wantError(t, rec, http.StatusRequestEntityTooLarge, "limit")
	// A GET with a body is cut off too, whatever the handler does with it.
	rec = h.do(http.MethodGet, "/api/v1/devices", big, "Authorization", "Bearer "+testToken)
	if rec.Code != http.StatusOK && rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("GET with a body: %d", rec.Code)
	}
}

func TestHTTPServerTimeouts(t *testing.T) {
	h := newHarness(t)
	hs := h.srv.HTTPServer("")
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout <= 0 || hs.WriteTimeout <= 0 || hs.IdleTimeout <= 0 || hs.MaxHeaderBytes <= 0 {
		t.Fatalf("timeouts missing: %+v", hs)
	}
}

// TestSlowClientIsCutOff opens a connection that never finishes its headers: the server
// closes it after ReadHeaderTimeout (shortened here), while a normal client is served.
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

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// The deadline only bounds a broken test; the server closes far sooner.
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rest, err := io.ReadAll(conn)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept a slow client's connection open for %v", time.Since(start))
		}
		// A reset also means the server dropped the connection.
	}
	if strings.Contains(string(rest), "200 OK") {
		t.Fatalf("the slow request was served: %q", rest)
	}

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a normal client got %d", resp.StatusCode)
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
