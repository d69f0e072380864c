package chaos

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"monitor/simulate"
)

// load is one simulator run in the background.
type load struct {
	opts    simulate.Options
	started time.Time
	done    chan struct{}
	res     *simulate.Result
	err     error
	// drainFrom, when set, is when the drain starts instead of the end of the sending:
	// when an operator's action starts it.
	drainFrom time.Time
	// retries counts requests a retrying terminal sent again (scenario 6).
	retries atomic.Int64
}

// steady sends rate reports per second for d from devices devices to url, in the
// background; the acknowledged reports go to an ack file for check.
func steady(t *testing.T, url string, devices int, rate float64, d time.Duration) *load {
	t.Helper()
	o := simulate.Options{URL: url, Devices: devices, Concurrency: 16, Mode: "steady", Rate: rate, Duration: d,
		SNPrefix: simulate.RandomPrefix(), Timeout: 5 * time.Second, Client: "std",
		AckFile: filepath.Join(t.TempDir(), "acked")}
	return startLoad(t, o)
}

func startLoad(t *testing.T, o simulate.Options) *load {
	l := &load{opts: o, started: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.res, l.err = simulate.Simulate(context.WithoutCancel(t.Context()), o)
	}()
	t.Cleanup(func() { <-l.done })
	return l
}

// wait waits for the sending to end and returns the summary.
func (l *load) wait(t *testing.T) *simulate.Result {
	t.Helper()
	<-l.done
	if l.err != nil {
		t.Fatalf("simulate: %v", l.err)
	}
	return l.res
}

// acked reads the run's acknowledged reports as "sn ndate ntime" keys.
func (l *load) acked(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(l.opts.AckFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		set[sc.Text()] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return set
}

// outcome is what one scenario found in tb_status.
type outcome struct {
	Scenario string
	// Acked are the distinct reports answered 200; Rows the rows of the run in tb_status.
	Acked, Rows int
	// Duplicates are rows beyond the first of one report; Lost are acknowledged reports
	// with no row; Unacked are rows of reports whose request failed (the server stored a
	// report whose answer never arrived): not an error, the terminal sends it again.
	Duplicates, Lost, Unacked int
	// Drain is the time from the end of the sending until every acknowledged report was
	// stored (or the wait gave up).
	Drain time.Duration
	Note  string
}

// check waits up to limit for every acknowledged report of l to be in tb_status, then
// counts the run's rows and fails the test on any lost or duplicated report. The
// scenario records the outcome, with its note, once it knows the note.
func check(t *testing.T, s *stack, l *load, scenario string, limit time.Duration) outcome {
	t.Helper()
	res := l.wait(t)
	sendEnd := l.started.Add(time.Duration(res.SendSeconds * float64(time.Second)))
	if !l.drainFrom.IsZero() {
		sendEnd = l.drainFrom
	}
	acked := l.acked(t)
	if len(acked) != res.Accepted {
		t.Fatalf("ack file holds %d reports, the simulator counted %d", len(acked), res.Accepted)
	}
	db, err := sql.Open("mysql", strings.TrimSuffix(s.maria.DSN, "?parseTime=true")+"?timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	o := outcome{Scenario: scenario, Acked: len(acked)}
	deadline := time.Now().Add(limit)
	for {
		rows, err := runRows(t.Context(), db, l.opts.SNPrefix)
		if err == nil {
			o.Rows, o.Duplicates, o.Lost, o.Unacked = 0, 0, 0, 0
			for key, n := range rows {
				o.Rows += n
				o.Duplicates += n - 1
				if !acked[key] {
					o.Unacked++
				}
			}
			for key := range acked {
				if rows[key] == 0 {
					o.Lost++
				}
			}
			if o.Lost == 0 {
				o.Drain = max(0, time.Since(sendEnd))
				break
			}
		}
		if time.Now().After(deadline) {
			o.Drain = time.Since(sendEnd)
			t.Errorf("%s: after %v, %d of %d acknowledged reports are not in tb_status (read error: %v)", scenario, limit, o.Lost, len(acked), err)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if o.Duplicates > 0 {
		t.Errorf("%s: %d reports stored more than once", scenario, o.Duplicates)
	}
	if distinct := o.Rows - o.Duplicates; distinct != o.Acked+o.Unacked {
		t.Errorf("%s: %d distinct reports stored, want the %d acknowledged and %d answered otherwise but stored", scenario, distinct, o.Acked, o.Unacked)
	}
	if o.Acked == 0 {
		t.Errorf("%s: no report was acknowledged: the scenario tested nothing (%+v)", scenario, res)
	}
	t.Logf("%s: sent %d, acknowledged %d, statuses %v, transport errors %d (first: %s)", scenario, res.Sent, res.Accepted, res.Statuses, res.TransportErrors, res.FirstError)
	return o
}

// runRows counts the rows of each report of the run with prefix, keyed "sn ndate ntime".
func runRows(ctx context.Context, db *sql.DB, prefix string) (map[string]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT sn, ndate, ntime FROM tb_status WHERE sn LIKE ?`, prefix+"%")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	seen := map[string]int{}
	var sn, nd, nt string
	for rows.Next() {
		if err := rows.Scan(&sn, &nd, &nt); err != nil {
			return nil, err
		}
		seen[sn+" "+nd+" "+nt]++
	}
	return seen, rows.Err()
}

var recordMu sync.Mutex

// record logs the outcome and, when MONITOR_CHAOS_REPORT names a file, appends it there
// as a row of RELIABILITY.md's table.
func record(t *testing.T, o outcome) {
	t.Helper()
	line := fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %.1f s | %s |", o.Scenario, o.Acked, o.Rows, o.Unacked, o.Duplicates, o.Lost, o.Drain.Seconds(), o.Note)
	t.Log(line)
	path := os.Getenv("MONITOR_CHAOS_REPORT")
	if path == "" {
		return
	}
	recordMu.Lock()
	defer recordMu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Error(err)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
}
