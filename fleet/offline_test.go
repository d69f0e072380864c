package fleet_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"monitor/fleet"
	"monitor/internal/testenv"
)

// TestOfflineDevicesMoveToReturnedWhenTheyReport: a device marked offline moves to the
// returned set with its next report, and one that reported after the sweep's cutoff (a
// report racing the sweep) goes there when it is marked; Forget drops it from both.
func TestOfflineDevicesMoveToReturnedWhenTheyReport(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.NewRedis(t)
	fl := fleet.New(rdb.Client, 1)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, sn := range []string{"SILENT", "RACER", "OTHER"} {
		if _, err := fl.Accept(ctx, sn, 1, t0); err != nil {
			t.Fatal(err)
		}
	}
	cutoff := t0.Add(time.Minute)
	// RACER reports after the sweep read its silence and before it marks it.
	if _, err := fl.Accept(ctx, "RACER", 1, cutoff.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := fl.MarkOffline(ctx, []string{"SILENT", "RACER"}, cutoff); err != nil {
		t.Fatal(err)
	}
	sh := fleet.NewShard(0, 1)
	members := func(key string) []string {
		t.Helper()
		m, err := rdb.Client.SMembers(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(m)
		return m
	}
	if got := members(sh.Offline); !slices.Equal(got, []string{"SILENT"}) {
		t.Fatalf("offline %v, want SILENT", got)
	}
	if got, err := fl.Returned(ctx); err != nil || !slices.Equal(got, []string{"RACER"}) {
		t.Fatalf("returned %v (%v), want RACER", got, err)
	}
	// SILENT reports: it moves; OTHER, not offline, moves nowhere.
	for _, sn := range []string{"SILENT", "OTHER"} {
		if _, err := fl.Accept(ctx, sn, 1, cutoff.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if got := members(sh.Returned); !slices.Equal(got, []string{"RACER", "SILENT"}) {
		t.Fatalf("returned %v, want RACER and SILENT", got)
	}
	if got := members(sh.Offline); len(got) != 0 {
		t.Fatalf("offline %v, want none", got)
	}
	if err := fl.ClearReturned(ctx, []string{"SILENT"}); err != nil {
		t.Fatal(err)
	}
	if _, err := fl.Forget(ctx, "RACER"); err != nil {
		t.Fatal(err)
	}
	if got := members(sh.Returned); len(got) != 0 {
		t.Fatalf("returned %v after clearing and forgetting, want none", got)
	}
}

// TestSilentBetween returns the devices whose last report is in (from, to].
func TestSilentBetween(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.NewRedis(t)
	fl := fleet.New(rdb.Client, 1)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for i, sn := range []string{"A", "B", "C", "D"} {
		if _, err := fl.Accept(ctx, sn, 1, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := fl.SilentBetween(ctx, t0, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var sns []string
	for _, s := range got {
		sns = append(sns, s.SN)
	}
	if !slices.Equal(sns, []string{"B", "C"}) || !got[1].At.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("silent between = %+v, want B and C (the bound's own second included)", got)
	}
}
