package simulate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Land is what a run found in tb_status once its reports had landed or the wait ran out.
type Land struct {
	// Landed is true when every accepted report was in tb_status before the timeout.
	Landed bool `json:"landed"`
	// Seconds is the time from the first request until every accepted report was seen in
	// tb_status (or until the wait gave up).
	Seconds float64 `json:"landing_s"`
	// EndToEndPerSec is accepted reports divided by Seconds.
	EndToEndPerSec float64 `json:"end_to_end_per_s"`
	Rows           int     `json:"rows"`
	// Lost were acknowledged but are not in tb_status.
	Lost int `json:"lost"`
	// Duplicated counts rows beyond the first for the same (sn, ndate, ntime).
	Duplicated int `json:"duplicated"`
	// Unacknowledged are rows of reports whose request failed or timed out on the client
	// side but that the server stored anyway; they are not an error.
	Unacknowledged int `json:"unacknowledged"`
	// Foreign are rows with the run's prefix that no request of this run sent.
	Foreign int `json:"foreign"`
}

// lander watches tb_status for one run's rows.
type lander struct {
	db   *sql.DB
	like string
}

func newLander(ctx context.Context, dsn, prefix string) (*lander, error) {
	if _, err := mysql.ParseDSN(dsn); err != nil {
		return nil, fmt.Errorf("--dsn: %w", err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(2)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		return nil, errors.Join(fmt.Errorf("database: %w", err), db.Close())
	}
	return &lander{db: db, like: likePrefix(prefix)}, nil
}

func (d *lander) close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// likePrefix returns a LIKE pattern matching strings that start with prefix.
func likePrefix(prefix string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(prefix) + "%"
}

// wait polls the row count until every accepted report is in tb_status or timeout has
// passed since the sending ended, then checks exactly which reports landed.
func (d *lander) wait(ctx context.Context, l *loader, start time.Time, timeout, every time.Duration) (*Land, error) {
	want := l.acceptedCount()
	deadline := time.Now().Add(timeout)
	for {
		asked := time.Now()
		n, err := d.count(ctx)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		// Counting a large run's rows is work for the database under test: poll at most
		// a third of the time, so the check never slows down what it measures.
		wait := max(every, 2*now.Sub(asked))
		if n >= want {
			land, err := d.check(ctx, l)
			if err != nil {
				return nil, err
			}
			if land.Lost == 0 {
				land.Landed = true
				land.Seconds = now.Sub(start).Seconds()
				if land.Seconds > 0 {
					land.EndToEndPerSec = float64(want) / land.Seconds
				}
				return land, nil
			}
		}
		if now.After(deadline) {
			land, err := d.check(ctx, l)
			if err != nil {
				return nil, err
			}
			land.Seconds = now.Sub(start).Seconds()
			return land, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for tb_status: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
}

func (d *lander) count(ctx context.Context) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tb_status WHERE sn LIKE ?`, d.like).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count tb_status: %w", err)
	}
	return n, nil
}

// check reads every row of the run and compares it with what was acknowledged.
func (d *lander) check(ctx context.Context, l *loader) (*Land, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT sn, ndate, ntime FROM tb_status WHERE sn LIKE ?`, d.like)
	if err != nil {
		return nil, fmt.Errorf("read tb_status: %w", err)
	}
	seen := make([]uint8, len(l.accepted))
	land := &Land{}
	var sn, ndate, ntime sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&sn, &ndate, &ntime); err != nil {
			return nil, errors.Join(fmt.Errorf("read tb_status: %w", err), rows.Close())
		}
		land.Rows++
		i, ok := l.fleet.lookup(string(sn), string(ndate), string(ntime))
		if !ok || i >= len(seen) {
			land.Foreign++
			continue
		}
		if seen[i] < 255 {
			seen[i]++
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("read tb_status: %w", err)
	}
	for i, n := range seen {
		acked := l.accepted[i].Load()
		switch {
		case n == 0 && acked:
			land.Lost++
		case n > 0 && !acked:
			land.Unacknowledged++
		}
		if n > 1 {
			land.Duplicated += int(n) - 1
		}
	}
	return land, nil
}

// lookup returns the request index of the report with these key columns.
func (f fleet) lookup(sn, ndate, ntime string) (int, bool) {
	num, ok := strings.CutPrefix(sn, f.prefix)
	if !ok || len(num) != f.width {
		return 0, false
	}
	d, err := strconv.Atoi(num)
	if err != nil || d < 0 || d >= f.devices {
		return 0, false
	}
	t, err := time.Parse(time.DateTime, ndate+" "+ntime)
	if err != nil {
		return 0, false
	}
	off := t.Sub(baseTime)
	if off < 0 || off%time.Second != 0 {
		return 0, false
	}
	return f.index(d, int(off/time.Second)), true
}
