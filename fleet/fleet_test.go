package fleet_test

import (
	"context"
	"testing"
	"time"

	"monitor/fleet"
	"monitor/internal/testenv"
)

func TestAcceptAndDeliveries(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.NewRedis(t)
	fl := fleet.New(rdb.Client, 1)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

	if err := fl.SetOpen(ctx, map[string]uint64{"A": 7}); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		sn   string
		at   time.Time
		want uint64
	}{
		{"A", t0, 7},
		{"B", t0.Add(time.Minute), 0},
		{"A", t0.Add(2 * time.Minute), 7},
		{"A", t0.Add(-time.Hour), 7}, // a late, older report does not move last seen back
	} {
		id, err := fl.Accept(ctx, tc.sn, 0, tc.at)
		if err != nil || id != tc.want {
			t.Fatalf("accept %d: %d, %v; want %d", i, id, err, tc.want)
		}
	}
	seen, err := fl.LastSeen(ctx, []string{"A", "B", "NEVER"})
	if err != nil {
		t.Fatal(err)
	}
	if !seen[0].Equal(t0.Add(2*time.Minute)) || !seen[1].Equal(t0.Add(time.Minute)) || !seen[2].IsZero() {
		t.Fatalf("last seen %v", seen)
	}
	w, err := fl.Watch(ctx)
	if err != nil || w.Seeded {
		t.Fatalf("watch %+v %v", w, err)
	}

	ds, err := fl.TakeDeliveries(ctx)
	if err != nil || len(ds) != 1 || ds[7].Count != 3 || !ds[7].First.Equal(t0) {
		t.Fatalf("deliveries %+v %v", ds, err)
	}
	if again, err := fl.TakeDeliveries(ctx); err != nil || len(again) != 0 {
		t.Fatalf("taken twice: %+v %v", again, err)
	}
	// A delivery recorded after the take merges with what is given back.
	if _, err := fl.Accept(ctx, "A", 0, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := fl.RestoreDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if back, err := fl.TakeDeliveries(ctx); err != nil || back[7].Count != 4 {
		t.Fatalf("after restore %+v %v", back, err)
	}

	// Closing a command only drops the entry that still names it.
	if err := fl.SetOpen(ctx, map[string]uint64{"A": 8}); err != nil {
		t.Fatal(err)
	}
	if err := fl.ClearOpen(ctx, map[string]uint64{"A": 7}); err != nil {
		t.Fatal(err)
	}
	if id, err := fl.Accept(ctx, "A", 0, t0.Add(4*time.Minute)); err != nil || id != 8 {
		t.Fatalf("after clearing an old id: %d %v", id, err)
	}
	if err := fl.ClearOpen(ctx, map[string]uint64{"A": 8}); err != nil {
		t.Fatal(err)
	}
	if id, err := fl.Accept(ctx, "A", 0, t0.Add(5*time.Minute)); err != nil || id != 0 {
		t.Fatalf("after clearing: %d %v", id, err)
	}
}

func TestTenantBinding(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.NewRedis(t)
	fl := fleet.New(rdb.Client, 1)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

	if got, created, err := fl.Bind(ctx, "A", 0); err != nil || got != 0 || !created {
		t.Fatalf("first bind: %d %v, %v", got, created, err)
	}
	if got, created, err := fl.Bind(ctx, "A", 7); err != nil || got != 0 || created {
		t.Fatalf("bind to another tenant: %d %v, %v; want the first tenant 0, not created", got, created, err)
	}
	// Unbind removes only the binding it names.
	if err := fl.Unbind(ctx, "A", 7); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := fl.Tenant(ctx, "A"); err != nil || !ok || got != 0 {
		t.Fatalf("unbind of another tenant removed A's binding: %d %v %v", got, ok, err)
	}
	if err := fl.Unbind(ctx, "A", 0); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := fl.Tenant(ctx, "A"); err != nil || ok {
		t.Fatalf("A still bound after Unbind: %v %v", ok, err)
	}
	if _, _, err := fl.Bind(ctx, "A", 0); err != nil {
		t.Fatal(err)
	}
	// Accept binds an unbound device (device auth off) and never rebinds a bound one.
	if _, err := fl.Accept(ctx, "B", 5, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := fl.Accept(ctx, "A", 7, t0); err != nil {
		t.Fatal(err)
	}
	for sn, want := range map[string]uint32{"A": 0, "B": 5} {
		if got, ok, err := fl.Tenant(ctx, sn); err != nil || !ok || got != want {
			t.Fatalf("tenant of %s: %d %v %v; want %d", sn, got, ok, err, want)
		}
	}
	if _, ok, err := fl.Tenant(ctx, "NEVER"); err != nil || ok {
		t.Fatalf("tenant of a device never bound: %v %v", ok, err)
	}
	if err := fl.SetTenant(ctx, "A", 7); err != nil {
		t.Fatal(err)
	}
	if got, _, err := fl.Bind(ctx, "A", 0); err != nil || got != 7 {
		t.Fatalf("bind after a move: %d, %v; want 7", got, err)
	}
	// Seeding: the database's tenant replaces Redis's, and the mark is set.
	if w, err := fl.Watch(ctx); err != nil || w.TenantsSeeded {
		t.Fatalf("seeded before seeding: %+v %v", w, err)
	}
	if err := fl.SeedTenants(ctx, []fleet.Bound{{SN: "B", Tenant: 6}, {SN: "C", Tenant: 1}}); err != nil {
		t.Fatal(err)
	}
	for sn, want := range map[string]uint32{"A": 7, "B": 6, "C": 1} {
		if got, _, err := fl.Tenant(ctx, sn); err != nil || got != want {
			t.Fatalf("tenant of %s after seeding: %d %v; want %d", sn, got, err, want)
		}
	}
	if w, err := fl.Watch(ctx); err != nil || !w.TenantsSeeded || w.Seeded {
		t.Fatalf("after seeding tenants: %+v %v", w, err)
	}
}

func TestIntakeBuckets(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.NewRedis(t)
	fl := fleet.New(rdb.Client, 1)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, time.Second, 4 * time.Second, 5 * time.Second, time.Minute} {
		if _, err := fl.Accept(ctx, "A", 0, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	b0 := t0.Unix() / 5
	got, err := fl.Intake(ctx, t0)
	if err != nil || len(got) != 3 || got[b0] != 3 || got[b0+1] != 1 || got[b0+12] != 1 {
		t.Fatalf("intake %v %v", got, err)
	}
	// Reading from a later time drops the older buckets for good.
	if got, err := fl.Intake(ctx, t0.Add(5*time.Second)); err != nil || len(got) != 2 {
		t.Fatalf("intake from +5s %v %v", got, err)
	}
	if n, err := rdb.Client.HLen(ctx, fleet.NewShard(0, 1).Intake).Result(); err != nil || n != 2 {
		t.Fatalf("buckets left %d %v", n, err)
	}
}
