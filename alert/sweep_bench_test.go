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
	"monitor/model"
)

// BenchmarkSweep times one offline sweep over a fleet of 100,000 devices on the real
// Redis and MariaDB (run: MONITOR_TEST_REAL=1 go test ./alert -run '^$' -bench Sweep
// -benchtime 10x -count 5). Sub-benchmarks:
//   - steady: every device reported recently, nothing fires;
//   - fire-1pct: 1,000 devices of 50 cities went silent, each run raises their alerts
//     and enqueues the grouped notifications (the alerts are cleared between runs);
//   - firing-1pct: those 1,000 alerts already fire and stay firing;
//   - steady+unsent: steady, with the unsent-records check scanning the devices table;
//   - fire-10pct: 10,000 devices went silent at once (a tenth of the fleet dark).
func BenchmarkSweep(b *testing.B) {
	const devices, silent = 100_000, 1_000
	ctx := context.Background()
	rdb := testenv.NewRedis(b)
	db := testenv.NewDB(b).DB
	enqueuer := asynq.NewClient(rdb.Opt())
	defer func() {
		if err := enqueuer.Close(); err != nil {
			b.Error(err)
		}
	}()
	fl := fleet.New(rdb.Client, 1)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	now := t0.Add(3 * offlineAfter)

	rows := make([]model.Device, devices)
	seen := make([]fleet.Seen, devices)
	for i := range rows {
		sn := fmt.Sprintf("SN%06d", i)
		rows[i] = model.Device{SN: sn, Tenant: uint32(i % 10), City: fmt.Sprintf("%04d", i%50), Unum1: uint32(i % 7),
			FirstSeen: t0, LastSeen: t0}
		at := now.Add(-time.Minute)
		if i%(devices/silent) == 0 {
			at = now.Add(-time.Hour) // silent for an hour
		}
		seen[i] = fleet.Seen{SN: sn, At: at}
	}
	if err := db.CreateInBatches(rows, 2000).Error; err != nil {
		b.Fatal(err)
	}
	// Seeded at t0, and intake working ever since: the sweep may fire.
	if err := fl.Seed(ctx, seen); err != nil {
		b.Fatal(err)
	}
	for at := t0; at.Before(now); at = at.Add(10 * time.Minute) {
		if _, err := fl.Accept(ctx, "SN000001", 0, at); err != nil {
			b.Fatal(err)
		}
	}
	sweeper := func(opt alert.Options) *alert.Sweeper {
		opt.OfflineAfter, opt.Notify, opt.Logger = offlineAfter, true, testenv.Logger(b)
		if opt.Now == nil {
			opt.Now = func() time.Time { return now }
		}
		s, err := alert.NewSweeper(db, fl, enqueuer, opt)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	clear := func(b *testing.B) {
		b.Helper()
		if err := db.Exec("DELETE FROM alerts").Error; err != nil {
			b.Fatal(err)
		}
		// Without the last sweep's state the next sweep reads every silent device.
		sh := fleet.NewShard(0, 1)
		if err := rdb.Client.Del(ctx, fleet.KeySweepCutoff, sh.Held, sh.Offline, sh.Returned).Err(); err != nil {
			b.Fatal(err)
		}
	}
	run := func(b *testing.B, s *alert.Sweeper, reset bool, wantFired int) {
		for b.Loop() {
			if reset {
				b.StopTimer()
				clear(b)
				b.StartTimer()
			}
			r, err := s.Sweep(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if r.Fired != wantFired || r.Held != "" {
				b.Fatalf("sweep %+v, want %d fired", r, wantFired)
			}
		}
	}
	// steady sweeps at a time when nobody is silent yet.
	b.Run("steady", func(b *testing.B) {
		clear(b)
		s := sweeper(alert.Options{Now: func() time.Time { return now.Add(-offlineAfter - time.Minute) }})
		run(b, s, false, 0)
	})
	b.Run("fire-1pct", func(b *testing.B) { run(b, sweeper(alert.Options{}), true, silent) })
	b.Run("firing-1pct", func(b *testing.B) {
		clear(b)
		s := sweeper(alert.Options{})
		if _, err := s.Sweep(ctx); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		run(b, s, false, 0)
	})
	b.Run("steady+unsent", func(b *testing.B) {
		clear(b)
		s := sweeper(alert.Options{UnsentThreshold: 1000})
		if _, err := s.Sweep(ctx); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		run(b, s, false, 0)
	})
	b.Run("fire-10pct", func(b *testing.B) {
		zs := make([]redis.Z, 0, devices/10)
		for i := 0; i < devices; i += 10 {
			zs = append(zs, redis.Z{Score: float64(now.Add(-time.Hour).UnixMicro()), Member: fmt.Sprintf("SN%06d", i)})
		}
		if err := rdb.Client.ZAdd(ctx, fleet.NewShard(0, 1).LastSeen, zs...).Err(); err != nil {
			b.Fatal(err)
		}
		run(b, sweeper(alert.Options{}), true, devices/10)
	})
}
