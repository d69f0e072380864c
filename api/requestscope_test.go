package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestServerSpansCarryTheAnsweredStatus traces a panic, a refused report, an oversized
// operator request and a normal one: each server span names the request id the response
// carries and the status the client got, and only the panic's span is an error.
func TestServerSpansCarryTheAnsweredStatus(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Errorf("tracer provider: %v", err)
		}
	})
	h := newHarness(t, func(o *Options) { o.Tracer = tp.Tracer("test") })
	h.srv.echo.GET("/boom", func(echo.Context) error { panic("kaboom") })

	for _, tc := range []struct {
		name   string
		do     func() *http.Response
		status int
		route  string
		failed bool
	}{
		{"panic", func() *http.Response { return h.do(http.MethodGet, "/boom", "").Result() }, 500, "/boom", true},
		{"refused report", func() *http.Response { return h.postReport(`{"sn":""}`).Result() }, 400, "/open/statusUpload", false},
		{"oversized", func() *http.Response {
			return h.do(http.MethodGet, "/api/v1/devices", strings.Repeat("x", 2<<20), bearer...).Result()
		}, 413, "/api/v1/devices", false},
		{"health", func() *http.Response { return h.do(http.MethodGet, "/healthz", "").Result() }, 200, "/healthz", false},
	} {
		exp.Reset()
		res := tc.do()
		if res.StatusCode != tc.status {
			t.Fatalf("%s: answered %d, want %d", tc.name, res.StatusCode, tc.status)
		}
		var server []tracetest.SpanStub
		for _, s := range exp.GetSpans() {
			if s.SpanKind == trace.SpanKindServer && strings.HasSuffix(s.Name, " "+tc.route) {
				server = append(server, s)
			}
		}
		if len(server) != 1 {
			t.Fatalf("%s: %d server spans for %s in %v", tc.name, len(server), tc.route, exp.GetSpans())
		}
		s := server[0]
		id := res.Header.Get(echo.HeaderXRequestID)
		if id == "" || !hasAttribute(s, attribute.String("monitor.request_id", id)) || !hasAttribute(s, attribute.Int("http.response.status_code", tc.status)) {
			t.Errorf("%s: span attributes %v, want request id %q and status %d", tc.name, s.Attributes, id, tc.status)
		}
		if failed := s.Status.Code == codes.Error; failed != tc.failed {
			t.Errorf("%s: span status %v, want an error: %v", tc.name, s.Status, tc.failed)
		}
	}
}

func hasAttribute(s tracetest.SpanStub, kv attribute.KeyValue) bool {
	for _, a := range s.Attributes {
		if a == kv {
			return true
		}
	}
	return false
}
