//go:build chaos

package chaos

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestOneOfTwoWorkersKilled is scenario 2: two workers share the queues; one is killed
// with SIGKILL while it writes a batch and never comes back. The other carries on
// alone, and its recoverer re-runs the batch the dead one held.
func TestOneOfTwoWorkersKilled(t *testing.T) {
	t.Parallel()
	s := newStack(t, redisConfig{})
	api := s.start("api")
	w1 := s.start("worker")
	s.start("worker")
	rate, d := 1000.0, 30*time.Second
	l := steady(t, api.url, 2000, rate, d)
	time.Sleep(d / 3)
	db, err := sql.Open("mysql", strings.TrimSuffix(s.maria.DSN, "?parseTime=true"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "LOCK TABLES tb_status WRITE"); err != nil {
		t.Fatal(err)
	}
	// Both workers block on the lock; killing one leaves its batch leased to a dead process.
	if !waitUntil(t.Context(), 20*time.Second, func() bool { return lockWaiters(t, db) > 1 }) {
		t.Fatal("the two workers never both waited for the lock on tb_status")
	}
	w1.kill()
	killed := time.Now()
	if _, err := conn.ExecContext(t.Context(), "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	o := check(t, s, l, "2 one of two workers SIGKILL mid-batch, not restarted", 4*time.Minute)
	o.Note = fmt.Sprintf("the survivor re-ran the dead worker's batch; all stored %.0f s after the kill", time.Since(killed).Seconds())
	record(t, o)
}
