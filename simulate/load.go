package simulate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// baseTime is the report time of every device's first report; report k of a device is k
// seconds later, so (sn, ndate, ntime) is unique per report of a run. It is the start of
// the UTC day the simulator started: reports carry the current date, as a fleet's do.
// A fixed date in the past put every report in tb_status's oldest partition, which the
// daily retention job drops with whatever is dated before its cutoff: a run over 03:17
// UTC, the job's default time, lost the reports stored before it ran.
var baseTime = time.Now().UTC().Truncate(24 * time.Hour)

// fleet names the devices of a run and builds their reports.
type fleet struct {
	prefix  string
	width   int
	devices int
	tenant  uint32
}

func newFleet(o *Options) fleet {
	return fleet{prefix: o.SNPrefix, width: len(strconv.Itoa(o.Devices - 1)), devices: o.Devices, tenant: o.Tenant}
}

// sn returns the serial number of device d.
func (f fleet) sn(b []byte, d int) []byte {
	var digits [20]byte
	num := strconv.AppendInt(digits[:0], int64(d), 10)
	b = append(b, f.prefix...)
	for range f.width - len(num) {
		b = append(b, '0')
	}
	return append(b, num...)
}

// report returns request i's key: device i%devices sends its (i/devices)-th report.
func (f fleet) report(i int) (device, seq int) { return i % f.devices, i / f.devices }

// index is the inverse of report.
func (f fleet) index(device, seq int) int { return seq*f.devices + device }

// reportTime is when a device's seq-th report was taken.
func reportTime(seq int) time.Time { return baseTime.Add(time.Duration(seq) * time.Second) }

// body appends the JSON of request i to b.
func (f fleet) body(b []byte, i int) []byte {
	d, seq := f.report(i)
	t := reportTime(seq)
	b = append(b, `{"sn":"`...)
	b = f.sn(b, d)
	b = append(b, `","pos":"`...)
	b = strconv.AppendInt(b, int64(10000000+d%90000000), 10)
	b = append(b, `","city":"0371","id":"B503","unum1":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"unum2":0,"ndate":"`...)
	b = t.AppendFormat(b, time.DateOnly)
	b = append(b, `","ntime":"`...)
	b = t.AppendFormat(b, time.TimeOnly)
	b = append(b, `","amount":`...)
	b = strconv.AppendInt(b, int64(d%1000*100), 10)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(d%50), 10)
	b = append(b, `,"line":`...)
	b = strconv.AppendInt(b, int64(100+d%400), 10)
	b = append(b, `,"stime":"05:01:01","ctime":"`...)
	b = t.Add(-10*time.Second).AppendFormat(b, time.TimeOnly)
	b = append(b, `","tenant":`...)
	b = strconv.AppendUint(b, uint64(f.tenant), 10)
	return append(b, '}')
}

// loader is one run's senders and what they observed.
type loader struct {
	opts      *Options
	fleet     fleet
	newPoster func() poster
	// accepted[i] is set when request i was answered 200 with code 0.
	accepted []atomic.Bool

	prog progress

	mu        sync.Mutex
	latencies []time.Duration
	statuses  map[int]int
	transport int
	firstErr  string
}

// Simulate runs the load described by o against the server and, with a DSN, checks what landed.
func Simulate(ctx context.Context, o Options) (res *Result, err error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	l := &loader{
		opts:     &o,
		fleet:    newFleet(&o),
		accepted: make([]atomic.Bool, o.total()),
		statuses: make(map[int]int),
	}
	target, err := url.Parse(o.URL + uploadPath)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	switch {
	case o.Client == "std" || target.Scheme != "http":
		std := &stdPoster{client: newStdClient(o.Concurrency, o.Timeout), url: target.String(), deviceKey: o.DeviceKey}
		l.newPoster = func() poster { return std }
	default:
		l.newPoster = func() poster { return newRawPoster(target, uploadPath, o.DeviceKey, o.Timeout) }
	}

	var lander *lander
	if o.DSN != "" {
		if lander, err = newLander(ctx, o.DSN, o.SNPrefix); err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, lander.close()) }()
	}

	cpu0 := cpuTime()
	start := time.Now()
	var stopProgress, progressDone chan struct{}
	if o.Progress != nil {
		stopProgress, progressDone = make(chan struct{}), make(chan struct{})
		go l.prog.show(o.Progress, o.ProgressTerminal, start, len(l.accepted), stopProgress, progressDone)
	}
	if o.Mode == "burst" {
		l.burst(ctx)
	} else {
		l.steady(ctx, start)
	}
	sendEnd := time.Now()
	if stopProgress != nil {
		close(stopProgress)
		<-progressDone
	}
	res = l.result(start, sendEnd)
	res.GeneratorCPUSeconds = (cpuTime() - cpu0).Seconds()
	if o.AckFile != "" {
		if err := l.writeAckFile(o.AckFile); err != nil {
			return res, err
		}
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("simulate: %w", ctx.Err())
	}
	if lander != nil {
		land, err := lander.wait(ctx, l, start, o.LandTimeout, o.PollEvery)
		if err != nil {
			return res, err
		}
		res.Land = land
	}
	return res, nil
}

// burst sends every device's report once, over Concurrency senders, each as soon as a
// connection is free. Latency counts from the moment the request is written.
func (l *loader) burst(ctx context.Context) {
	var next atomic.Int64
	total := int64(len(l.accepted))
	var wg sync.WaitGroup
	for range l.opts.Concurrency {
		wg.Go(func() {
			lat := make([]time.Duration, 0, int(total)/l.opts.Concurrency+1)
			var buf []byte
			p := l.newPoster()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= total {
					break
				}
				sent := time.Now()
				buf = l.send(ctx, p, buf, int(i))
				d := time.Since(sent)
				lat = append(lat, d)
				l.prog.latency.observe(d)
			}
			l.addLatencies(lat)
			l.closePoster(p)
		})
	}
	wg.Wait()
}

// steady sends Rate reports per second for Duration, open loop: request i is due at
// start + i/Rate whether or not earlier ones were answered, and its latency counts from
// then, so a backlog in the server (or in the generator) shows as latency.
func (l *loader) steady(ctx context.Context, start time.Time) {
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, l.opts.Concurrency*4)
	var wg sync.WaitGroup
	for range l.opts.Concurrency {
		wg.Go(func() {
			var lat []time.Duration
			var buf []byte
			p := l.newPoster()
			for j := range jobs {
				if ctx.Err() != nil {
					continue // drain
				}
				buf = l.send(ctx, p, buf, j.i)
				d := time.Since(j.due)
				lat = append(lat, d)
				l.prog.latency.observe(d)
			}
			l.addLatencies(lat)
			l.closePoster(p)
		})
	}
	total := len(l.accepted)
	interval := float64(time.Second) / l.opts.Rate
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	i := 0
	for i < total && ctx.Err() == nil {
		due := min(total, int(float64(time.Since(start))/interval)+1)
		for ; i < due && ctx.Err() == nil; i++ {
			select {
			case jobs <- job{i: i, due: start.Add(time.Duration(float64(i) * interval))}:
			case <-ctx.Done():
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
}

// uploadPath is the terminal route of the contract.
const uploadPath = "/open/statusUpload"

// okReply is how a 200 answer of an accepted report starts.
var okReply = []byte(`{"code":0,`)

// send posts request i through p and records its outcome; buf is reused for the body.
func (l *loader) send(ctx context.Context, p poster, buf []byte, i int) []byte {
	buf = l.fleet.body(buf[:0], i)
	var head [64]byte
	status, n, err := p.post(ctx, buf, head[:])
	l.prog.sent.Add(1)
	switch {
	case err != nil:
		l.fail(0, err)
	case status == http.StatusOK && bytes.HasPrefix(head[:n], okReply):
		l.accepted[i].Store(true)
		l.prog.acked.Add(1)
	case status == http.StatusOK:
		l.fail(-1, fmt.Errorf("HTTP 200 without code 0: %s", bytes.TrimSpace(head[:n]))) // not an acknowledgement
	default:
		l.fail(status, fmt.Errorf("HTTP %d: %s", status, bytes.TrimSpace(head[:n])))
	}
	return buf
}

func (l *loader) closePoster(p poster) {
	if err := p.close(); err != nil {
		l.fail(0, err)
	}
}

// fail counts a refused request by status, or a transport error when status is 0.
func (l *loader) fail(status int, err error) {
	l.prog.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if status == 0 {
		l.transport++
	} else {
		l.statuses[status]++
	}
	if l.firstErr == "" {
		l.firstErr = err.Error()
	}
}

func (l *loader) addLatencies(lat []time.Duration) {
	l.mu.Lock()
	l.latencies = append(l.latencies, lat...)
	l.mu.Unlock()
}

func (l *loader) acceptedCount() int {
	n := 0
	for i := range l.accepted {
		if l.accepted[i].Load() {
			n++
		}
	}
	return n
}

// result summarises the sending phase.
func (l *loader) result(start, end time.Time) *Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.latencies)
	elapsed := end.Sub(start)
	r := &Result{
		Mode:            l.opts.Mode,
		URL:             l.opts.URL,
		Devices:         l.opts.Devices,
		Concurrency:     l.opts.Concurrency,
		SNPrefix:        l.opts.SNPrefix,
		Sent:            len(l.latencies),
		Accepted:        l.acceptedCount(),
		TransportErrors: l.transport,
		FirstError:      l.firstErr,
		Statuses:        make(map[string]int, len(l.statuses)),
		SendSeconds:     elapsed.Seconds(),
		P50ms:           ms(percentile(l.latencies, 0.50)),
		P99ms:           ms(percentile(l.latencies, 0.99)),
		MaxMs:           ms(percentile(l.latencies, 1)),
	}
	if l.opts.Mode == "steady" {
		r.Rate, r.DurationSeconds = l.opts.Rate, l.opts.Duration.Seconds()
	}
	for s, n := range l.statuses {
		r.Statuses[strconv.Itoa(s)] = n
	}
	if elapsed > 0 {
		r.AcceptedPerSec = float64(r.Accepted) / elapsed.Seconds()
	}
	return r
}

// percentile returns the q-quantile of sorted, by the nearest-rank method.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
