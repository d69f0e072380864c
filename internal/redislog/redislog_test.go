package redislog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestPrintfWritesOneSlogLine(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)))
	var _ interface {
		Printf(context.Context, string, ...any)
	} = l
	redis.SetLogger(l) // compiles only if Logger is go-redis's Logging
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v\n", 5, "refused")
	got := buf.String()
	if !strings.HasPrefix(got, "time=") || strings.Count(got, "\n") != 1 ||
		!strings.Contains(got, `level=WARN msg="redis: connection pool: failed to dial after 5 attempts: refused" component=redis`) {
		t.Fatalf("logged %q", got)
	}
}
