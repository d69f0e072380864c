package fleet_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"monitor/fleet"
	"monitor/internal/redispipe"
	"monitor/internal/testenv"
	"monitor/task"
)

// TestShardsSplitTheFleet: with several shards each device's state is in the shard of
// its ingest queue, every key of a shard carries that queue's hash tag, and the reads
// over the whole fleet see every shard.
func TestShardsSplitTheFleet(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.NewRedis(t)
	const n = 6
	fl := fleet.New(rdb.Client, n)
	in := task.Ingest{Queues: n}
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

	sns := make([]string, 60)
	open := map[string]uint64{}
	for i := range sns {
		sns[i] = fmt.Sprintf("SN%04d", i)
		open[sns[i]] = uint64(100 + i)
	}
	if err := fl.SetOpen(ctx, open); err != nil {
		t.Fatal(err)
	}
	for i, sn := range sns {
		id, err := fl.Accept(ctx, sn, 3, t0.Add(time.Duration(i)*time.Second))
		if err != nil || id != uint64(100+i) {
			t.Fatalf("accept %s: %d, %v", sn, id, err)
		}
	}
	for _, sh := range fl.Shards() {
		tag := "{" + sh.Queue + "}"
		for _, k := range []string{sh.LastSeen, sh.Seeded, sh.Open, sh.Deliveries, sh.FirstDelivery, sh.Tenant, sh.TenantSeeded, sh.Intake} {
			if !strings.Contains(k, tag) || strings.Count(k, "{") != 1 {
				t.Fatalf("key %q is not under the hash tag %s alone", k, tag)
			}
		}
		members, err := rdb.Client.ZRange(ctx, sh.LastSeen, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(members) == 0 {
			t.Errorf("shard %s holds no device of 60", sh.Queue)
		}
		for _, sn := range members {
			if in.Queue(sn) != sh.Queue {
				t.Errorf("%s is in shard %s, its queue is %s", sn, sh.Queue, in.Queue(sn))
			}
		}
	}
	seen, err := fl.LastSeen(ctx, []string{sns[59], "NEVER", sns[0]})
	if err != nil {
		t.Fatal(err)
	}
	if !seen[0].Equal(t0.Add(59*time.Second)) || !seen[1].IsZero() || !seen[2].Equal(t0) {
		t.Fatalf("last seen across shards: %v", seen)
	}
	silent, err := fl.SilentSince(ctx, t0.Add(9*time.Second))
	if err != nil || len(silent) != 10 {
		t.Fatalf("silent: %d devices, %v; want 10", len(silent), err)
	}
	got, err := fl.Open(ctx)
	if err != nil || len(got) != 60 {
		t.Fatalf("open: %d, %v; want 60", len(got), err)
	}
	ds, err := fl.TakeDeliveries(ctx)
	if err != nil || len(ds) != 60 || ds[100].Count != 1 || !ds[100].First.Equal(t0) {
		t.Fatalf("deliveries: %d, %+v, %v", len(ds), ds[100], err)
	}
	counts, err := fl.Intake(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, c := range counts {
		total += c
	}
	if total != 60 {
		t.Fatalf("intake over the shards counts %d reports, want 60", total)
	}
}

// TestReshardingReseeds: after a change of the shard count, the marks of the old count
// no longer count, so the sweep re-seeds; and a device's entry left in a shard that is
// no longer its own is ignored by the fleet-wide reads.
func TestReshardingReseeds(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.NewRedis(t)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	four := fleet.New(rdb.Client, 4)
	seen := []fleet.Seen{}
	for i := range 40 {
		seen = append(seen, fleet.Seen{SN: fmt.Sprintf("SN%04d", i), At: t0})
	}
	if err := four.Seed(ctx, seen); err != nil {
		t.Fatal(err)
	}
	if err := four.SeedTenants(ctx, []fleet.Bound{{SN: "SN0001", Tenant: 2}}); err != nil {
		t.Fatal(err)
	}
	if w, err := four.Watch(ctx); err != nil || !w.Seeded || !w.TenantsSeeded {
		t.Fatalf("four shards after seeding: %+v, %v", w, err)
	}
	// ingest-0..3 are shards of both counts, seeded for four.
	six := fleet.New(rdb.Client, 6)
	if w, err := six.Watch(ctx); err != nil || w.Seeded || w.TenantsSeeded {
		t.Fatalf("six shards over four's marks: %+v, %v; want not seeded", w, err)
	}
	silent, err := six.SilentSince(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	in6 := task.Ingest{Queues: 6}
	in4 := task.Ingest{Queues: 4}
	want := 0
	for _, s := range seen {
		if in6.Shard(s.SN) == in4.Shard(s.SN) {
			want++ // still in its own shard
		}
	}
	if len(silent) != want || want == len(seen) {
		t.Fatalf("six shards see %d silent devices of four's, want the %d still in their own shard", len(silent), want)
	}
	if err := six.Seed(ctx, seen); err != nil {
		t.Fatal(err)
	}
	if silent, err = six.SilentSince(ctx, t0); err != nil || len(silent) != len(seen) {
		t.Fatalf("after re-seeding: %d silent, %v; want %d", len(silent), err, len(seen))
	}
}

// TestFleetOnRedisCluster runs every fleet operation on a real 3-master cluster through
// the pipelined client, as the API and the workers do: a script or transaction touching
// keys of two slots would fail with CROSSSLOT, and a fleet-wide read that missed a shard
// would miss its devices.
func TestFleetOnRedisCluster(t *testing.T) {
	addrs := testenv.NewRedisCluster(t, 3)
	cc := redispipe.New(redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs}))
	t.Cleanup(func() {
		if err := cc.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx := t.Context()
	const n = 6
	fl := fleet.New(cc, n)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	sns := make([]string, 60)
	open := map[string]uint64{}
	var seen []fleet.Seen
	var bound []fleet.Bound
	for i := range sns {
		sns[i] = fmt.Sprintf("CL%04d", i)
		open[sns[i]] = uint64(500 + i)
		seen = append(seen, fleet.Seen{SN: sns[i], At: t0.Add(-time.Hour)})
		bound = append(bound, fleet.Bound{SN: sns[i], Tenant: 4})
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(fl.Seed(ctx, seen))
	must(fl.SeedTenants(ctx, bound))
	if w, err := fl.Watch(ctx); err != nil || !w.Seeded || !w.TenantsSeeded {
		t.Fatalf("watch after seeding: %+v, %v", w, err)
	}
	must(fl.SetOpen(ctx, open))
	for i, sn := range sns {
		if id, err := fl.Accept(ctx, sn, 4, t0.Add(time.Duration(i)*time.Second)); err != nil || id != uint64(500+i) {
			t.Fatalf("accept %s: %d, %v", sn, id, err)
		}
	}
	if b, created, err := fl.Bind(ctx, sns[3], 9); err != nil || b != 4 || created {
		t.Fatalf("bind a bound device: %d, %v, %v", b, created, err)
	}
	if b, created, err := fl.Bind(ctx, "NEWDEV", 9); err != nil || b != 9 || !created {
		t.Fatalf("bind a new device: %d, %v, %v", b, created, err)
	}
	must(fl.Unbind(ctx, "NEWDEV", 9))
	must(fl.SetTenant(ctx, sns[5], 7))
	if tn, ok, err := fl.Tenant(ctx, sns[5]); err != nil || !ok || tn != 7 {
		t.Fatalf("tenant after a move: %d, %v, %v", tn, ok, err)
	}
	if _, ok, err := fl.Tenant(ctx, "NEWDEV"); err != nil || ok {
		t.Fatalf("unbound device still bound: %v, %v", ok, err)
	}
	last, err := fl.LastSeen(ctx, sns)
	if err != nil || !last[59].Equal(t0.Add(59*time.Second)) {
		t.Fatalf("last seen: %v, %v", last[59], err)
	}
	if silent, err := fl.SilentSince(ctx, t0.Add(29*time.Second)); err != nil || len(silent) != 30 {
		t.Fatalf("silent: %d, %v; want 30", len(silent), err)
	}
	counts, err := fl.Intake(ctx, t0.Add(-time.Minute))
	must(err)
	total := int64(0)
	for _, c := range counts {
		total += c
	}
	if total != 60 {
		t.Fatalf("intake over the cluster's shards counts %d, want 60", total)
	}
	got, err := fl.Open(ctx)
	if err != nil || len(got) != 60 {
		t.Fatalf("open commands: %d, %v", len(got), err)
	}
	must(fl.ClearOpen(ctx, map[string]uint64{sns[0]: 500, sns[1]: 999}))
	if got, err = fl.Open(ctx); err != nil || len(got) != 59 || got[sns[1]] != 501 {
		t.Fatalf("after clearing one: %d open, %v", len(got), err)
	}
	ds, err := fl.TakeDeliveries(ctx)
	if err != nil || len(ds) != 60 {
		t.Fatalf("deliveries: %d, %v", len(ds), err)
	}
	must(fl.RestoreDeliveries(ctx, ds))
	if again, err := fl.TakeDeliveries(ctx); err != nil || len(again) != 60 || again[559].Count != 1 {
		t.Fatalf("restored deliveries: %d, %+v, %v", len(again), again[559], err)
	}

	// The offline sweep's state, spread over the shards like the devices.
	cutoff := t0.Add(29 * time.Second) // sns[0:30] silent since then
	if n, err := fl.CountSilent(ctx, cutoff); err != nil || n != 30 {
		t.Fatalf("count silent: %d, %v; want 30", n, err)
	}
	if between, err := fl.SilentBetween(ctx, t0.Add(9*time.Second), cutoff); err != nil || len(between) != 20 {
		t.Fatalf("silent between: %d, %v; want 20", len(between), err)
	}
	longest, err := fl.SilentLongest(ctx, cutoff, 5)
	must(err)
	if got := snsOf(longest); !slices.Equal(got, sns[:5]) {
		t.Fatalf("longest silent: %v, want %v", got, sns[:5])
	}
	must(fl.SetOffline(ctx, sns[:30], cutoff))
	must(fl.SaveSweepState(ctx, fleet.SweepState{Cutoff: cutoff, Held: seen[30:40]}))
	st, err := fl.SweepState(ctx)
	must(err)
	if got := snsOf(st.Held); !st.Cutoff.Equal(cutoff) || !sameSet(got, sns[30:40]) {
		t.Fatalf("sweep state: cutoff %v, held %v", st.Cutoff, got)
	}
	for _, sn := range sns[:4] {
		_, err := fl.Accept(ctx, sn, 4, t0.Add(time.Hour))
		must(err)
	}
	returned, err := fl.Returned(ctx)
	must(err)
	if !sameSet(returned, sns[:4]) {
		t.Fatalf("returned: %v, want %v", returned, sns[:4])
	}
	must(fl.ClearReturned(ctx, returned))
	if returned, err = fl.Returned(ctx); err != nil || len(returned) != 0 {
		t.Fatalf("returned after clearing: %v, %v", returned, err)
	}
	for _, sn := range []string{sns[10], sns[35]} {
		if had, err := fl.Forget(ctx, sn); err != nil || !had {
			t.Fatalf("forget %s: %v, %v", sn, had, err)
		}
		if _, ok, err := fl.Tenant(ctx, sn); err != nil || ok {
			t.Fatalf("forgotten %s still bound: %v", sn, err)
		}
	}
	if st, err = fl.SweepState(ctx); err != nil || len(st.Held) != 9 {
		t.Fatalf("held after forgetting one: %d, %v", len(st.Held), err)
	}
	if n, err := fl.CountSilent(ctx, cutoff); err != nil || n != 25 {
		t.Fatalf("count silent after four reported and one was forgotten: %d, %v; want 25", n, err)
	}
	must(fl.ClearReturned(ctx, sns))

	// The API's Recorder: buffered reports flushed per shard, open commands indexed per shard.
	rsns := make([]string, 30)
	ropen := map[string]uint64{}
	for i := range rsns {
		rsns[i] = fmt.Sprintf("RC%04d", i)
		ropen[rsns[i]] = uint64(900 + i)
	}
	must(fl.SetOpen(ctx, ropen))
	recorderOnCluster(t, fl, rsns, ropen)
}

func snsOf(seen []fleet.Seen) []string {
	out := make([]string, len(seen))
	for i, s := range seen {
		out[i] = s.SN
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
