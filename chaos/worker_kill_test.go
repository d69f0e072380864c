package chaos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestWorkerKilledMidBatch is scenario 1: a worker is killed with SIGKILL while it
// writes a batch (held there by a lock on tb_status), then started again. The batch it
// held re-runs once its lease has expired and asynq's recoverer has found it.
func TestWorkerKilledMidBatch(t *testing.T) {
	t.Parallel()
	s := newStack(t, redisConfig{})
	api := s.start("api")
	w := s.start("worker")
	rate, d := 200.0, 10*time.Second
	if full {
		rate, d = 1000, 30*time.Second
	}
	l := steady(t, api.url, 500, rate, d)
	time.Sleep(d / 3)

	// Hold a write lock on tb_status so the next batch blocks inside its write, then
	// kill the worker in the middle of it.
	lock := lockStatus(t, s, 1)
	w.kill()
	killed := time.Now()
	lock.unlock()
	s.start("worker")
	o := check(t, s, l, "1 worker SIGKILL mid-batch, restarted", 5*time.Minute)
	o.Note = fmt.Sprintf("the killed worker's batch re-ran and every report was stored %.0f s after the kill", time.Since(killed).Seconds())
	record(t, o)
}

// statusLock is a write lock on tb_status that the test holds, so batches block in
// their first statement (LOAD DATA, or INSERT where the server refuses it).
type statusLock struct {
	t    *testing.T
	db   *sql.DB
	conn *sql.Conn
}

// lockStatus takes a write lock on tb_status and waits until waiters batches wait for it.
func lockStatus(t *testing.T, s *stack, waiters int) *statusLock {
	t.Helper()
	db, err := sql.Open("mysql", strings.TrimSuffix(s.maria.DSN, "?parseTime=true"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "LOCK TABLES tb_status WRITE"); err != nil {
		t.Fatal(err)
	}
	l := &statusLock{t: t, db: db, conn: conn}
	l.wait(waiters)
	return l
}

// wait waits until n batches' statements wait for the lock.
func (l *statusLock) wait(n int) {
	l.t.Helper()
	if n > 0 && !waitUntil(l.t.Context(), 20*time.Second, func() bool { return lockWaiters(l.t, l.db) >= n }) {
		l.t.Fatalf("%d batches never all waited for the lock on tb_status", n)
	}
}

// unlock releases the lock.
func (l *statusLock) unlock() {
	l.t.Helper()
	if _, err := l.conn.ExecContext(context.Background(), "UNLOCK TABLES"); err != nil {
		l.t.Fatal(err)
	}
	if err := errors.Join(l.conn.Close(), l.db.Close()); err != nil {
		l.t.Fatal(err)
	}
}

// lockWaiters counts the batch statements waiting for a table lock.
func lockWaiters(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	err := db.QueryRowContext(t.Context(),
		"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table%' AND (INFO LIKE 'LOAD DATA%' OR INFO LIKE 'INSERT%')").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
