// Package simulate is a terminal-fleet simulator and load generator for monitor, and the
// one-INSERT-per-request baseline server it is compared with.
//
// A run has N devices with stable serial numbers (a per-run prefix plus the device's
// index) that post status reports to /open/statusUpload, either each once as fast as C
// connections allow (burst) or at a fixed rate for a duration (steady, open loop: every
// request has a scheduled time and its latency counts from then, so a slow server cannot
// hide its queueing by slowing the generator down). Every report has its own ndate/ntime,
// so each accepted report is a new row. Given a DSN, the run then waits until every
// accepted report is in tb_status and checks exactly which are missing or duplicated.
package simulate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"monitor/internal/term"
)

// Options are the settings of one simulator run.
type Options struct {
	URL         string
	Devices     int
	Concurrency int
	// Mode is "burst" (each device reports once) or "steady" (Rate reports/s for Duration).
	Mode     string
	Rate     float64
	Duration time.Duration
	// SNPrefix starts every serial number of the run, so runs never collide in tb_status.
	SNPrefix  string
	Tenant    uint32
	DeviceKey string
	Timeout   time.Duration
	// DSN, when set, is the go-sql-driver DSN of the target database: the run then waits
	// up to LandTimeout for every accepted report to be in tb_status.
	DSN         string
	LandTimeout time.Duration
	PollEvery   time.Duration
	JSON        bool
	// Client is "raw" (a minimal HTTP/1.1 client per connection, the default: it leaves
	// more CPU to the server under test) or "std" (net/http's Transport).
	Client string
	// CPUProfile, when set, is a file for a CPU profile of the simulator itself.
	CPUProfile string
	// Progress, when set, receives the run's progress while it sends: one line rewritten
	// every second when ProgressTerminal, else a plain line every 5 seconds.
	Progress         io.Writer
	ProgressTerminal bool
	// AckFile, when set, receives one line "sn ndate ntime" per acknowledged report once
	// the sending ends (before any landing check).
	AckFile string
}

const usage = `usage: monitor simulate [flags]            load generator
       monitor simulate baseline [flags]   one-INSERT-per-request baseline server
       monitor simulate floor [flags]      the floor: Echo decoding each report, storing nothing
`

// Run runs the simulator with the command-line args and prints its report to out and
// its progress to errOut. "monitor simulate baseline ..." runs the baseline server
// instead, and "monitor simulate floor ..." the floor server, until ctx is done.
func Run(ctx context.Context, args []string, out, errOut io.Writer) (err error) {
	if len(args) > 0 && args[0] == "baseline" {
		return runBaseline(ctx, args[1:], out)
	}
	if len(args) > 0 && args[0] == "floor" {
		return runFloor(ctx, args[1:], out)
	}
	opts, err := parseFlags(args, out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if opts.Progress != nil {
		opts.Progress, opts.ProgressTerminal = errOut, term.IsTerminal(errOut)
	}
	if opts.CPUProfile != "" {
		stop, err := startCPUProfile(opts.CPUProfile)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	res, err := Simulate(ctx, opts)
	if err != nil {
		return err
	}
	if opts.JSON {
		b, err := json.Marshal(res)
		if err != nil {
			return fmt.Errorf("encode summary: %w", err)
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	return res.Print(out)
}

func parseFlags(args []string, out io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("monitor simulate", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8888", "base URL of the monitor API")
	fs.IntVar(&o.Devices, "devices", 1000, "number of simulated devices")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "HTTP connections")
	fs.StringVar(&o.Mode, "mode", "burst", "burst (every device reports once, as fast as possible) or steady (--rate for --duration)")
	fs.Float64Var(&o.Rate, "rate", 1000, "steady mode: reports per second over the whole fleet")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "steady mode: how long to send")
	fs.StringVar(&o.SNPrefix, "sn-prefix", "", "prefix of every serial number (default: random per run)")
	tenant := fs.Uint("tenant", 0, "tenant of every device")
	fs.StringVar(&o.DeviceKey, "device-key", "", "X-Device-Key sent with every report (for MONITOR_DEVICE_AUTH=tenant-key)")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.StringVar(&o.DSN, "dsn", "", "go-sql-driver DSN of the target database: wait until every accepted report is in tb_status and count lost and duplicated rows")
	fs.DurationVar(&o.LandTimeout, "land-timeout", 2*time.Minute, "with --dsn: how long to wait for the reports to land")
	fs.DurationVar(&o.PollEvery, "poll", 50*time.Millisecond, "with --dsn: how often to count the rows")
	fs.BoolVar(&o.JSON, "json", false, "print the summary as one JSON line")
	fs.StringVar(&o.Client, "client", "raw", "raw (one minimal HTTP/1.1 keep-alive connection per sender, cheapest) or std (net/http Transport with as many idle connections)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the simulator to this file")
	fs.StringVar(&o.AckFile, "ack-file", "", "write each acknowledged report as a line \"sn ndate ntime\" to this file")
	showProgress := fs.Bool("progress", true, "show the rate, acknowledged reports, errors and p99 so far on stderr while sending")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("simulate: unexpected argument %q", fs.Arg(0))
	}
	if *tenant > 1<<32-1 {
		return o, fmt.Errorf("--tenant: %d does not fit 32 bits", *tenant)
	}
	o.Tenant = uint32(*tenant)
	if *showProgress {
		o.Progress = io.Discard // Run points it at stderr
	}
	if o.SNPrefix == "" {
		o.SNPrefix = RandomPrefix()
	}
	return o, o.validate()
}

// RandomPrefix returns a fresh serial-number prefix such as "S3fa9c1-".
func RandomPrefix() string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return "S" + hex.EncodeToString(b) + "-"
}

func (o *Options) validate() error {
	switch {
	case o.Devices < 1:
		return fmt.Errorf("--devices: %d must be at least 1", o.Devices)
	case o.Concurrency < 1:
		return fmt.Errorf("--concurrency: %d must be at least 1", o.Concurrency)
	case o.Mode != "burst" && o.Mode != "steady":
		return fmt.Errorf("--mode: %q is not burst or steady", o.Mode)
	case o.Mode == "steady" && (o.Rate <= 0 || o.Duration <= 0):
		return errors.New("--mode steady needs a positive --rate and --duration")
	case o.Client != "" && o.Client != "raw" && o.Client != "std":
		return fmt.Errorf("--client: %q is not raw or std", o.Client)
	case o.Timeout <= 0:
		return errors.New("--timeout must be positive")
	case o.DSN != "" && (o.LandTimeout <= 0 || o.PollEvery <= 0):
		return errors.New("--land-timeout and --poll must be positive")
	}
	width := len(fmt.Sprint(o.Devices - 1))
	if len(o.SNPrefix)+width > 32 {
		return fmt.Errorf("--sn-prefix: %q is too long for %d devices (serial numbers have at most 32 characters)", o.SNPrefix, o.Devices)
	}
	for _, c := range o.SNPrefix {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("--sn-prefix: %q may only hold A-Z a-z 0-9 _ -", o.SNPrefix)
		}
	}
	o.URL = strings.TrimRight(o.URL, "/")
	return nil
}

// total is the number of reports the run sends.
func (o *Options) total() int {
	if o.Mode == "burst" {
		return o.Devices
	}
	return int(o.Rate * o.Duration.Seconds())
}

// startCPUProfile profiles this process into path until the returned function is called.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(fmt.Errorf("cpu profile: %w", err), f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}
