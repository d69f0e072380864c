package app

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// newSpanExporter returns the exporter of the process's spans to the OTLP/HTTP endpoint
// (MONITOR_OTLP_ENDPOINT, which config.Validate checked is an http(s) URL). A base URL
// such as http://collector:4318 posts to /v1/traces, like OTEL_EXPORTER_OTLP_ENDPOINT;
// a URL with a path posts there. Tests replace it with an in-memory exporter.
var newSpanExporter = defaultSpanExporter

func defaultSpanExporter(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
}

// buildTracer sets up tracing when MONITOR_OTLP_ENDPOINT is set: a tracer provider of
// its own (never the global one) batching spans to the endpoint, flushed and shut down
// when p closes, after the servers stopped. With no endpoint p.tracer stays nil and no
// component traces anything.
func (p *process) buildTracer(ctx context.Context, endpoint string, r role) error {
	if endpoint == "" {
		return nil
	}
	exp, err := newSpanExporter(ctx, endpoint)
	if err != nil {
		return fmt.Errorf("MONITOR_OTLP_ENDPOINT: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "monitor"), attribute.String("monitor.role", r.String()))))
	p.onClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("flush traces: %w", err)
		}
		return nil
	})
	p.tracer = tp.Tracer("monitor")
	return nil
}
