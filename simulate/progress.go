package simulate

import (
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"
)

// latencyBuckets is a lock-free histogram of request latencies in buckets growing by
// 10% from 1µs (the last one takes everything from about 100s up), so the senders can
// record each latency with one atomic add and the progress line can read a p99 at any
// time, within 10%.
type latencyBuckets [200]atomic.Int64

const bucketGrowth = 1.1

var logGrowth = math.Log(bucketGrowth)

func (h *latencyBuckets) observe(d time.Duration) {
	i := 0
	if d > time.Microsecond {
		i = min(int(math.Ceil(math.Log(float64(d)/float64(time.Microsecond))/logGrowth)), len(h)-1)
	}
	h[i].Add(1)
}

// quantile returns the upper bound of the bucket holding the q-quantile, 0 when empty.
func (h *latencyBuckets) quantile(q float64) time.Duration {
	var counts [len(latencyBuckets{})]int64
	var total int64
	for i := range h {
		counts[i] = h[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, n := range counts {
		if seen += n; seen >= max(rank, 1) {
			return time.Duration(float64(time.Microsecond) * math.Pow(bucketGrowth, float64(i)))
		}
	}
	return time.Duration(float64(time.Microsecond) * math.Pow(bucketGrowth, float64(len(counts)-1)))
}

// progress counts what the senders did so far.
type progress struct {
	sent, acked, failed atomic.Int64
	latency             latencyBuckets
}

// line is one progress report after elapsed.
func (p *progress) line(elapsed time.Duration, total int) string {
	sent := p.sent.Load()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(sent) / elapsed.Seconds()
	}
	return fmt.Sprintf("%6.1fs  sent %d/%d (%.0f/s)  acknowledged %d  errors %d  p99 so far %.1f ms",
		elapsed.Seconds(), sent, total, rate, p.acked.Load(), p.failed.Load(), ms(p.latency.quantile(0.99)))
}

// show writes progress lines to w until stop is closed: on a terminal one line
// rewritten every second, elsewhere a plain line every 5 seconds. It writes a last line
// when stop closes and then closes done.
func (p *progress) show(w io.Writer, terminal bool, start time.Time, total int, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every, format := 5*time.Second, "%s\n"
	if terminal {
		every, format = time.Second, "\r\033[K%s" // back to the line's start and clear it
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			fmt.Fprintf(w, format, p.line(time.Since(start), total))
		case <-stop:
			fmt.Fprintf(w, format, p.line(time.Since(start), total))
			if terminal {
				fmt.Fprintln(w)
			}
			return
		}
	}
}
