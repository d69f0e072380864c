package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"monitor/internal/fixture"
	"monitor/internal/testenv"
	"monitor/model"
)

// keptSpans is an in-memory exporter whose spans survive the provider's shutdown (the
// SDK's own resets them then), so the test reads them after the process flushed.
type keptSpans struct{ *tracetest.InMemoryExporter }

func (keptSpans) Shutdown(context.Context) error { return nil }

// TestOneReportIsTracedFromHTTPToInsert runs `monitor all` on real Redis and MySQL with
// MONITOR_OTLP_ENDPOINT set and an in-memory exporter: one report sent with a
// traceparent yields the request's server span in the terminal's trace, its enqueue as
// a child, the batch's span linked to that enqueue through the task headers, and the
// INSERT as the batch span's child.
func TestOneReportIsTracedFromHTTPToInsert(t *testing.T) {
	exp := keptSpans{tracetest.NewInMemoryExporter()}
	newSpanExporter = func(context.Context, string) (sdktrace.SpanExporter, error) { return exp, nil }
	t.Cleanup(func() { newSpanExporter = defaultSpanExporter })

	r := testenv.NewRedis(t)
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "tracing to the LOAD DATA needs a real MySQL")
	}
	addr := testenv.FreeAddr(t)
	dir := t.TempDir()
	env := []string{
		"MONITOR_HTTP_ADDR=" + addr, "MONITOR_DATA_DIR=" + dir, "MONITOR_LOG_DIR=" + filepath.Join(dir, "logs"),
		"MONITOR_REDIS_ADDR=" + r.Addr, fmt.Sprintf("MONITOR_REDIS_DB=%d", r.DB), "MONITOR_MYSQL_DSN=" + db.DSN,
		"MONITOR_OPERATOR_TOKEN=" + strings.Repeat("t", 24),
		"MONITOR_OTLP_ENDPOINT=http://127.0.0.1:4318",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testenv.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"all"}, env, &stdout, &stderr) }()
	testenv.WaitFor(t, 20*time.Second, "monitor all to answer /healthz", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		return err == nil && resp.Body.Close() == nil && resp.StatusCode == http.StatusOK
	})

	const terminalTrace, terminalSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/open/statusUpload", strings.NewReader(fixture.Status))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+terminalTrace+"-"+terminalSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("report: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	testenv.WaitFor(t, 20*time.Second, "the report in tb_status", func() bool {
		var n int64
		return db.DB.Model(&model.Status{}).Count(&n).Error == nil && n == 1
	})
	cancel() // the shutdown flushes the spans
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("monitor all did not stop")
	}

	spans := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		spans[s.Name] = s
	}
	httpSpan, ok := spans["POST /open/statusUpload"]
	if !ok {
		t.Fatalf("no request span among %v", names(exp.GetSpans()))
	}
	if httpSpan.SpanContext.TraceID().String() != terminalTrace || httpSpan.Parent.SpanID().String() != terminalSpan ||
		httpSpan.SpanKind != trace.SpanKindServer || !hasAttr(httpSpan, attribute.Int("http.response.status_code", 200)) {
		t.Errorf("request span %s in trace %s, parent %s, kind %v, attributes %v: want the terminal's trace and span, status 200",
			httpSpan.Name, httpSpan.SpanContext.TraceID(), httpSpan.Parent.SpanID(), httpSpan.SpanKind, httpSpan.Attributes)
	}
	enqueue, ok := spans["enqueue status:batch"]
	if !ok {
		t.Fatalf("no enqueue span among %v", names(exp.GetSpans()))
	}
	if enqueue.Parent.SpanID() != httpSpan.SpanContext.SpanID() || enqueue.SpanContext.TraceID() != httpSpan.SpanContext.TraceID() {
		t.Errorf("enqueue span's parent %s, want the request span %s", enqueue.Parent.SpanID(), httpSpan.SpanContext.SpanID())
	}
	batch, ok := spans["process status:batch"]
	if !ok {
		t.Fatalf("no batch span among %v", names(exp.GetSpans()))
	}
	if len(batch.Links) != 1 || !batch.Links[0].SpanContext.Equal(enqueue.SpanContext.WithRemote(true)) && !batch.Links[0].SpanContext.Equal(enqueue.SpanContext) {
		t.Errorf("batch span links %+v, want the one report's enqueue span %s", batch.Links, enqueue.SpanContext.SpanID())
	}
	// On MySQL the batch writer loads its rows with LOAD DATA (worker/load.go).
	load, ok := spans["LOAD DATA tb_status"]
	if !ok || load.Parent.SpanID() != batch.SpanContext.SpanID() || load.SpanContext.TraceID() != batch.SpanContext.TraceID() {
		t.Errorf("LOAD DATA span %+v among %v: want the batch span's child", load.Parent, names(exp.GetSpans()))
	}
	upsert, ok := spans["INSERT devices"]
	if !ok || upsert.Parent.SpanID() != batch.SpanContext.SpanID() {
		t.Errorf("devices upsert span %+v: want the batch span's child", upsert.Parent)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func hasAttr(s tracetest.SpanStub, kv attribute.KeyValue) bool {
	for _, a := range s.Attributes {
		if a == kv {
			return true
		}
	}
	return false
}
