package simulate

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLatencyBucketsQuantile(t *testing.T) {
	var h latencyBuckets
	if got := h.quantile(0.99); got != 0 {
		t.Fatalf("empty p99 = %v", got)
	}
	for range 98 {
		h.observe(2 * time.Millisecond)
	}
	h.observe(50 * time.Millisecond)
	h.observe(time.Hour) // past the last bucket
	for _, c := range []struct {
		q      float64
		lo, hi time.Duration
	}{
		{0.5, 2 * time.Millisecond, 2200 * time.Microsecond},
		{0.99, 50 * time.Millisecond, 55 * time.Millisecond},
		{1, 100 * time.Second, 200 * time.Second},
	} {
		if got := h.quantile(c.q); got < c.lo || got > c.hi {
			t.Errorf("q%v = %v, want within [%v, %v]", c.q, got, c.lo, c.hi)
		}
	}
}

// TestProgressOnATerminalRewritesOneLine: on a terminal every line starts by returning
// to the line's start and clearing it, and the last one ends the line.
func TestProgressOnATerminalRewritesOneLine(t *testing.T) {
	var p progress
	p.sent.Store(7)
	p.acked.Store(6)
	p.failed.Store(1)
	p.latency.observe(3 * time.Millisecond)
	var out bytes.Buffer
	stop, done := make(chan struct{}), make(chan struct{})
	go p.show(&out, true, time.Now().Add(-1500*time.Millisecond), 10, stop, done)
	time.Sleep(1100 * time.Millisecond) // one tick
	close(stop)
	<-done
	got := out.String()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\r\033[K")
	if !strings.HasPrefix(got, "\r\033[K") || !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 || len(lines) != 3 {
		t.Fatalf("terminal output %q", got)
	}
	if want := "sent 7/10 ("; !strings.Contains(lines[2], want) || !strings.Contains(lines[2], "acknowledged 6  errors 1  p99 so far 3.") {
		t.Fatalf("last line %q", lines[2])
	}
}
