// Command report turns the JSON summaries that bench/run.sh collected into BENCHMARKS.md:
// medians over the rounds, the ratio to the baseline measured in the same rounds, and
// each figure against its target.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"monitor/simulate"
)

func main() {
	dir := flag.String("dir", "bench/out", "directory with the run's files")
	out := flag.String("o", "BENCHMARKS.md", "report to write")
	notes := flag.String("notes", "bench/notes.md", "hand-written analysis appended to the report")
	flag.Parse()
	if err := run(*dir, *out, *notes); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// round is one simulator run and what was measured around it.
type round struct {
	name string
	res  simulate.Result
	load string
	rss  float64 // MiB, 0 when not measured
	// cpu is the CPU time per accepted report in µs of the server, Redis, MariaDB and the
	// generator, during sending and landing; nil when not measured.
	cpu []float64
}

func load(dir, glob string) ([]round, error) {
	files, err := filepath.Glob(filepath.Join(dir, glob+".json"))
	if err != nil {
		return nil, fmt.Errorf("glob: %w", err)
	}
	slices.Sort(files)
	var rs []round
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read result: %w", err)
		}
		r := round{name: strings.TrimSuffix(filepath.Base(f), ".json")}
		if err := json.Unmarshal(b, &r.res); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		base := strings.TrimSuffix(f, ".json")
		if b, err := os.ReadFile(base + ".load"); err == nil {
			r.load = strings.TrimSpace(string(b))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read load: %w", err)
		}
		if b, err := os.ReadFile(base + ".rss"); err == nil {
			kb, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
			if err != nil {
				return nil, fmt.Errorf("%s.rss: %w", base, err)
			}
			r.rss = kb / 1024
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read rss: %w", err)
		}
		if b, err := os.ReadFile(base + ".cpu"); err == nil {
			var server, redis, mysql, hz float64
			if _, err := fmt.Sscan(string(b), &server, &redis, &mysql, &hz); err != nil {
				return nil, fmt.Errorf("%s.cpu: %w", base, err)
			}
			if n := float64(max(1, r.res.Accepted)); hz > 0 {
				us := 1e6 / hz / n
				r.cpu = []float64{server * us, redis * us, mysql * us, r.res.GeneratorCPUSeconds * 1e6 / n}
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read cpu: %w", err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func median(rs []round, f func(round) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func landing(r round) float64 {
	if r.res.Land == nil || !r.res.Land.Landed {
		return 1e9 // never landed: worse than any time
	}
	return r.res.Land.Seconds
}

func errorsOf(r simulate.Result) int {
	n := r.TransportErrors
	for _, c := range r.Statuses {
		n += c
	}
	return n
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func secs(x float64) string {
	if x >= 1e9 {
		return "did not land"
	}
	return fmt.Sprintf("%.2f s", x)
}

func run(dir, out, notesPath string) error {
	machine, err := os.ReadFile(filepath.Join(dir, "machine.txt"))
	if err != nil {
		return fmt.Errorf("read machine: %w", err)
	}
	info := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(machine)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			info[k] = v
		}
	}
	bursts, err := load(dir, "burst-*")
	if err != nil {
		return err
	}
	steadies, err := load(dir, "steady-*")
	if err != nil {
		return err
	}
	bases, err := load(dir, "baseline-*")
	if err != nil {
		return err
	}
	floors, err := load(dir, "floor-*")
	if err != nil {
		return err
	}
	sustains, err := load(dir, "sustain-*")
	if err != nil {
		return err
	}
	if len(bursts) == 0 || len(bases) == 0 {
		return errors.New("no burst or baseline results")
	}
	slices.SortFunc(sustains, func(a, b round) int { return int(a.res.Rate - b.res.Rate) })

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks\n\n")
	p("Written by `make bench` (`bench/run.sh`); it leaves the raw JSON summary of every run in `bench/out/` (not committed).\n")
	p("Everything is co-located on one machine: `monitor all` (default config), Redis, MariaDB and the load\n")
	p("generator (`monitor simulate`). Each round runs three designs back to back: monitor, the\n")
	p("one-INSERT-per-request baseline (`monitor simulate baseline`) and the floor (`monitor simulate floor`:\n")
	p("Echo reading each body, decoding it with encoding/json into the report struct and answering the\n")
	p("fixed reply, storing nothing), so the ratios compare designs under the same load from other\n")
	p("processes; figures are medians over %d rounds. The floor's time is its sending time: it has\n", len(bursts))
	p("nothing to land.\n\n")
	p("- command: `%s`\n", info["command"])
	p("- machine: %s CPUs (`nproc`), %s; memory %s\n", info["nproc"], info["cpu"], info["mem"])
	p("- software: %s; Redis %s; MariaDB %s; %s\n", info["go"], info["redis"], info["mariadb"], info["kernel"])
	p("- measured: %s at commit %s\n\n", info["date"], info["commit"])

	burstLand := median(bursts, landing)
	baseLand := median(bases, landing)
	ratio := baseLand / burstLand
	floorSend := median(floors, func(r round) float64 { return r.res.SendSeconds })
	steadyP50 := median(steadies, func(r round) float64 { return r.res.P50ms })
	cpu := median(bursts, func(r round) float64 {
		if r.cpu == nil {
			return 1e9
		}
		return r.cpu[0] + r.cpu[1] + r.cpu[2]
	})
	acked := median(bursts, func(r round) float64 { return float64(r.res.Accepted) / float64(max(1, r.res.Sent)) * 100 })
	lost := median(bursts, func(r round) float64 { return float64(lossOf(r.res)) })
	dup := median(bursts, func(r round) float64 { return float64(dupOf(r.res)) })
	maxLost := slices.MaxFunc(bursts, func(a, b round) int { return lossOf(a.res) - lossOf(b.res) })
	maxDup := slices.MaxFunc(bursts, func(a, b round) int { return dupOf(a.res) - dupOf(b.res) })
	rss := median(bursts, func(r round) float64 { return r.rss })
	steadyP99 := median(steadies, func(r round) float64 { return r.res.P99ms })
	sustained := 0.0
	for _, s := range sustains {
		if s.res.Land != nil && s.res.Land.Landed && errorsOf(s.res) == 0 {
			sustained = max(sustained, s.res.Land.EndToEndPerSec)
		}
	}
	burstE2E := median(bursts, func(r round) float64 {
		if r.res.Land == nil {
			return 0
		}
		return r.res.Land.EndToEndPerSec
	})

	p("## Targets\n\n| target | measured (median) | |\n|---|---|---|\n")
	p("| burst of %d devices over %d connections: 100%% acknowledged | %.2f %% | %s |\n",
		bursts[0].res.Devices, bursts[0].res.Concurrency, acked, mark(acked == 100))
	p("| … 0 lost, 0 duplicated | lost %.0f, duplicated %.0f (worst round: %d, %d) | %s |\n",
		lost, dup, lossOf(maxLost.res), dupOf(maxDup.res), mark(lossOf(maxLost.res) == 0 && dupOf(maxDup.res) == 0))
	p("| … all rows in tb_status ≤ 7 s after the first request | %s | %s |\n", secs(burstLand), mark(burstLand <= 7))
	p("| landing ≥ 3× faster than the baseline | baseline %s, ratio %.2f× | %s |\n", secs(baseLand), ratio, mark(ratio >= 3))
	if len(floors) > 0 {
		p("| landing within 2× of the floor | floor %s, ratio %.2f× | %s |\n", secs(floorSend), burstLand/floorSend, mark(burstLand <= 2*floorSend))
	}
	p("| CPU per report of monitor, Redis and MariaDB together ≤ 100 µs (burst) | %.0f µs | %s |\n", cpu, mark(cpu <= 100))
	p("| sustained ingest ≥ 15,000 reports/s end to end | best end-to-end rate: %.0f/s in the steady runs, %.0f/s in the bursts (median) | %s |\n",
		sustained, burstE2E, mark(sustained >= 15000 || burstE2E >= 15000))
	p("| p99 ≤ 25 ms at a steady %.0f reports/s | %.2f ms | %s |\n", rateOf(steadies), steadyP99, mark(steadyP99 <= 25))
	p("| p50 ≤ 3 ms at a steady %.0f reports/s | %.2f ms | %s |\n", rateOf(steadies), steadyP50, mark(steadyP50 <= 3))
	p("| peak RSS of `monitor all` ≤ 128 MB during the burst | %.0f MiB | %s |\n\n", rss, mark(rss > 0 && rss <= 128))

	p("## Burst, side by side\n\n| round | load avg before | design | accepted | accepted/s | p50 | p99 | max | landed after | end to end | lost | dup | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i := range max(len(bursts), len(bases), len(floors)) {
		if i < len(bursts) {
			row(&b, bursts[i], "monitor")
		}
		if i < len(bases) {
			row(&b, bases[i], "baseline")
		}
		if i < len(floors) {
			row(&b, floors[i], "floor")
		}
	}
	p("\nMedian landing: monitor %s, baseline %s: **%.2f×** faster.", secs(burstLand), secs(baseLand), ratio)
	if len(floors) > 0 {
		p(" Floor (sending, nothing to land): %s: monitor takes **%.2f×** the floor's time.", secs(floorSend), burstLand/floorSend)
	}
	p("\n\n")
	p("### CPU per accepted report (median µs, from /proc/PID/stat and getrusage, sending + landing)\n\n")
	p("Load-independent where wall-clock figures are not: this is what 2 cores have to pay per report.\n")
	p("Redis and MariaDB figures include whatever other processes asked of them meanwhile.\n\n")
	p("| design | server | Redis | MariaDB | load generator | total |\n|---|---|---|---|---|---|\n")
	cpuRow(&b, "monitor", bursts)
	cpuRow(&b, "baseline", bases)
	cpuRow(&b, "floor", floors)
	cpuRow(&b, fmt.Sprintf("monitor, steady %.0f/s", rateOf(steadies)), steadies)
	p("\n")

	if len(steadies) > 0 {
		p("## Steady %.0f reports/s (open loop; latency counts from each request's scheduled time)\n\n", rateOf(steadies))
		p("| round | load avg before | design | accepted | accepted/s | p50 | p99 | max | landed after | end to end | lost | dup | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range steadies {
			row(&b, r, "monitor")
		}
		p("\n")
	}
	if len(sustains) > 0 {
		p("## Sustained ingest (steady at increasing rates, each on a fresh `monitor all`)\n\n")
		p("Landing counts from the first request. A rate is sustained when accepted/s matches it and everything\nlands shortly after the sending ends; above capacity, the end-to-end rate is the capacity.\n\n")
		p("| rate | load avg before | design | accepted | accepted/s | p50 | p99 | max | landed after | end to end | lost | dup | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range sustains {
			row(&b, r, "monitor")
		}
		p("\n")
	}
	notes, err := os.ReadFile(notesPath)
	switch {
	case err == nil:
		b.Write(notes)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read notes: %w", err)
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func rateOf(rs []round) float64 {
	if len(rs) == 0 {
		return 0
	}
	return rs[0].res.Rate
}

func lossOf(r simulate.Result) int {
	if r.Land == nil {
		return r.Accepted
	}
	return r.Land.Lost
}

func dupOf(r simulate.Result) int {
	if r.Land == nil {
		return 0
	}
	return r.Land.Duplicated
}

func row(b *strings.Builder, r round, design string) {
	res := r.res
	land, e2e, lost, dup := "—", "—", "—", "—"
	if res.Land != nil {
		lost, dup = strconv.Itoa(lossOf(res)), strconv.Itoa(dupOf(res))
		land = secs(landing(r))
		e2e = fmt.Sprintf("%.0f/s", res.Land.EndToEndPerSec)
	}
	accepted := strconv.Itoa(res.Accepted)
	if n := errorsOf(res); n > 0 {
		accepted += fmt.Sprintf(" (%d refused/failed: %s)", n, res.FirstError)
	}
	rss := "—"
	if r.rss > 0 {
		rss = fmt.Sprintf("%.0f MiB", r.rss)
	}
	fmt.Fprintf(b, "| %s | %s | %s | %s | %.0f | %.1f ms | %.1f ms | %.1f ms | %s | %s | %s | %s | %s |\n",
		r.name, r.load, design, accepted, res.AcceptedPerSec, res.P50ms, res.P99ms, res.MaxMs, land, e2e, lost, dup, rss)
}

func cpuRow(b *strings.Builder, design string, rs []round) {
	var measured []round
	for _, r := range rs {
		if r.cpu != nil {
			measured = append(measured, r)
		}
	}
	if len(measured) == 0 {
		return
	}
	var total float64
	fmt.Fprintf(b, "| %s |", design)
	for i := range 4 {
		x := median(measured, func(r round) float64 { return r.cpu[i] })
		total += x
		fmt.Fprintf(b, " %.0f |", x)
	}
	fmt.Fprintf(b, " %.0f |\n", total)
}
