// Package tracing carries OpenTelemetry trace contexts across monitor's asynq tasks: a
// report's context goes into its task's headers (task.HeaderTraceparent), and the batch
// that writes it links back to it (task.HeaderLinks). With tracing off no component
// holds a tracer and none of this runs.
package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var traceContext = propagation.TraceContext{}

// Traceparent returns the W3C traceparent of the span in ctx, or "" when it has none.
func Traceparent(ctx context.Context) string {
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return carrier["traceparent"]
}

// FromHeaders returns ctx with the remote span context of an incoming traceparent header
// (HTTP's or a task's), if there is a valid one.
func FromHeaders(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	return traceContext.Extract(ctx, carrier)
}

// Links returns a link to each valid traceparent of links, one a line (task.HeaderLinks).
func Links(links string) []trace.Link {
	var out []trace.Link
	for tp := range strings.SplitSeq(links, "\n") {
		sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp}))
		if sc.IsValid() {
			out = append(out, trace.Link{SpanContext: sc})
		}
	}
	return out
}
