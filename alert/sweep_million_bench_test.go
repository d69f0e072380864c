package alert_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"monitor/alert"
	"monitor/fleet"
	"monitor/internal/testenv"
)

// BenchmarkSweepMillion times the offline sweep with 1,000,000 devices in the last-seen
// set, 100,000 of them (10%) silent for two weeks with their offline alerts firing, on the
// real Redis and MariaDB (run: MONITOR_TEST_REAL=1 go test ./alert -run '^$' -bench
// SweepMillion -benchtime 10x -count 3 -timeout 30m). Before each sweep a minute passes,
// 10 more devices cross the offline threshold and 10 of the silent ones report again.
//   - changes: the sweep as built, reading what changed since the last sweep;
//   - full: the same sweep without a last sweep's state (as after Redis lost it), which
//     reads every silent device and every firing alert, as every sweep did before.
func BenchmarkSweepMillion(b *testing.B) {
	const devices, silent, perSweep = 1_000_000, 100_000, 10
	ctx := context.Background()
	rdb := testenv.NewRedis(b)
	db := testenv.NewDB(b).DB
	if db.Dialector.Name() != "mysql" {
		testenv.Missing(b, "the million-device sweep needs MySQL")
		return
	}
	enqueuer := asynq.NewClient(rdb.Opt())
	defer func() {
		if err := enqueuer.Close(); err != nil {
			b.Error(err)
		}
	}()
	fl := fleet.New(rdb.Client, 1)
	now := time.Date(2026, 3, 15, 8, 0, 0, 0, time.UTC)
	weeksAgo := now.Add(-14 * 24 * time.Hour)
	sn := func(i int) string { return fmt.Sprintf("SN%07d", i) }
	isSilent := func(i int) bool { return i%(devices/silent) == 0 }

	// devices: every device; alerts: the silent ones' offline alerts, firing.
	if err := db.Exec(`INSERT INTO devices (sn, tenant, city, first_seen, last_seen)
		SELECT CONCAT('SN', LPAD(seq, 7, '0')), seq % 10, LPAD(seq % 50, 4, '0'), ?, ? FROM seq_0_to_999999`,
		weeksAgo, now).Error; err != nil {
		b.Fatal(err)
	}
	if err := db.Exec(`INSERT INTO alerts (kind, sn, tenant, city, state, starts_at, value, firing_key)
		SELECT 'device_offline', CONCAT('SN', LPAD(seq, 7, '0')), seq % 10, LPAD(seq % 50, 4, '0'), 'firing', ?, 0,
		       CONCAT('device_offline:SN', LPAD(seq, 7, '0'))
		FROM seq_0_to_999999 WHERE seq % ? = 0`, weeksAgo.Add(offlineAfter), devices/silent).Error; err != nil {
		b.Fatal(err)
	}
	seen := make([]fleet.Seen, devices)
	for i := range seen {
		at := now.Add(-time.Minute)
		if isSilent(i) {
			at = weeksAgo
		}
		seen[i] = fleet.Seen{SN: sn(i), At: at}
	}
	if err := fl.Seed(ctx, seen); err != nil {
		b.Fatal(err)
	}
	if err := fl.SeedTenants(ctx, nil); err != nil {
		b.Fatal(err)
	}
	clock := now
	for at := now.Add(-4 * offlineAfter); !at.After(now); at = at.Add(time.Minute) {
		if _, err := fl.Accept(ctx, sn(1), 0, at); err != nil { // intake worked all along
			b.Fatal(err)
		}
	}
	s, err := alert.NewSweeper(db, fl, enqueuer, alert.Options{OfflineAfter: offlineAfter, Notify: true,
		Logger: testenv.Logger(b), Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	if r, err := s.Sweep(ctx); err != nil || r.Fired != 0 || r.Silent != silent {
		b.Fatalf("first sweep %+v (%v), want %d silent, nothing new", r, err, silent)
	}
	active, returning := 2, 0 // the next devices to fall silent and to come back
	step := func(b *testing.B) {
		b.Helper()
		clock = clock.Add(time.Minute)
		var zs []redis.Z
		for n := 0; n < perSweep; active++ {
			if isSilent(active) || active == 1 {
				continue
			}
			// Last seen half a minute past the previous cutoff: it crosses the threshold now.
			zs = append(zs, redis.Z{Score: float64(clock.Add(-offlineAfter - 30*time.Second).UnixMicro()), Member: sn(active)})
			n++
		}
		if err := rdb.Client.ZAdd(ctx, fleet.NewShard(0, 1).LastSeen, zs...).Err(); err != nil {
			b.Fatal(err)
		}
		for range perSweep {
			if _, err := fl.Accept(ctx, sn(returning), 0, clock); err != nil {
				b.Fatal(err)
			}
			returning += devices / silent
		}
		if _, err := fl.Accept(ctx, sn(1), 0, clock); err != nil {
			b.Fatal(err)
		}
	}
	sweep := func(b *testing.B) {
		r, err := s.Sweep(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if r.Fired != perSweep || r.Resolved != perSweep {
			b.Fatalf("sweep %+v, want %d fired and %d resolved", r, perSweep, perSweep)
		}
	}
	b.Run("changes", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			step(b)
			b.StartTimer()
			sweep(b)
		}
	})
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			step(b)
			if err := rdb.Client.Del(ctx, fleet.KeySweepCutoff).Err(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			sweep(b)
		}
	})
}
