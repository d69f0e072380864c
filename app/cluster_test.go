package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"monitor/fleet"
	"monitor/internal/testenv"
	"monitor/simulate"
	"monitor/task"
)

// clusterQueues is MONITOR_INGEST_QUEUES of the cluster test.
const clusterQueues = 6

// TestRedisCluster runs two api, two worker and two scheduler processes on a real
// 3-master Redis Cluster with six ingest queues, sends 50,000 reports through both
// APIs, and checks that every acknowledged report is stored exactly once, that the
// ingest queues and their fleet state spread over all three masters, that each periodic
// tick ran once, and that asynqmon lists the queues.
func TestRedisCluster(t *testing.T) {
	bin := testenv.MonitorBinary(t)
	addrs := testenv.NewRedisCluster(t, 3)
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "the cluster test needs a MySQL database")
		return
	}
	const token = "cluster-test-operator-token"
	env := []string{
		"MONITOR_REDIS_CLUSTER=" + strings.Join(addrs, ","),
		"MONITOR_MYSQL_DSN=" + db.DSN,
		"MONITOR_OPERATOR_TOKEN=" + token,
		"MONITOR_INGEST_QUEUES=" + strconv.Itoa(clusterQueues),
		"MONITOR_SWEEP_EVERY=2s",
		"MONITOR_COMMAND_SYNC_EVERY=2s",
	}
	var apis []string
	var procs []*proc
	for _, role := range []string{"api", "api", "worker", "worker", "scheduler", "scheduler"} {
		e := env
		if role == "api" {
			addr := testenv.FreeAddr(t)
			apis = append(apis, addr)
			e = append(e, "MONITOR_HTTP_ADDR="+addr)
		}
		p := startProc(t, bin, e, role)
		procs = append(procs, p)
	}
	for _, p := range procs {
		p.waitStarted(t)
	}

	// 50,000 reports, half through each API, each device once.
	ctx := context.Background()
	results := make([]*simulate.Result, len(apis))
	errs := make([]error, len(apis))
	var wg sync.WaitGroup
	for i, a := range apis {
		wg.Go(func() {
			results[i], errs[i] = simulate.Simulate(ctx, simulate.Options{
				URL: "http://" + a, Devices: 25000, Concurrency: 32, Mode: "burst", SNPrefix: simulate.RandomPrefix(),
				Timeout: 10 * time.Second, DSN: db.DSN, LandTimeout: 3 * time.Minute, PollEvery: 200 * time.Millisecond,
				Client: "raw",
			})
		})
	}
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("simulate through api %d: %v", i, errs[i])
		}
		if r.Accepted != r.Sent || r.Land == nil || !r.Land.Landed || r.Land.Lost != 0 || r.Land.Duplicated != 0 || r.Land.Foreign != 0 {
			t.Fatalf("api %d: sent %d, accepted %d (errors %v, first %q), land %+v", i, r.Sent, r.Accepted, r.Statuses, r.FirstError, r.Land)
		}
		t.Logf("api %d: %d reports accepted in %.1fs, landed exactly once in %.1fs", i, r.Accepted, r.SendSeconds, r.Land.Seconds)
	}

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	owners := testenv.SlotOwners(slots)
	masters := map[string]int{}
	fl := fleet.New(cc, clusterQueues)
	seen := int64(0)
	for i, q := range (task.Ingest{Queues: clusterQueues}).QueueNames() {
		slot, err := cc.ClusterKeySlot(ctx, "asynq:{"+q+"}:pending").Result()
		if err != nil {
			t.Fatal(err)
		}
		fleetSlot, err := cc.ClusterKeySlot(ctx, fl.Shards()[i].LastSeen).Result()
		if err != nil || fleetSlot != slot {
			t.Fatalf("queue %s is in slot %d, its fleet state in slot %d (%v)", q, slot, fleetSlot, err)
		}
		masters[owners.MasterOf(slot)]++
		n, err := cc.ZCard(ctx, fl.Shards()[i].LastSeen).Result()
		if err != nil {
			t.Fatal(err)
		}
		seen += n
	}
	if len(masters) != 3 || masters[""] != 0 {
		t.Fatalf("the %d ingest queues sit on masters %v, want all three of %v", clusterQueues, masters, addrs)
	}
	if seen != 50000 {
		t.Fatalf("the fleet state's shards hold %d last-seen times, want 50000", seen)
	}

	// Each periodic tick once: over ten seconds the two jobs (every 2 s) have ten ticks,
	// so the periodic queue processes ten tasks, give or take a few at the ends and for a
	// run delayed past them; a tick run by both workers, or enqueued by both schedulers,
	// would double that.
	insp := asynq.NewInspector(asynq.RedisClusterClientOpt{Addrs: addrs})
	defer insp.Close()
	processed := func() (int, int) {
		stats, err := insp.History(task.QueuePeriodic, 1)
		if err != nil {
			t.Fatal(err)
		}
		return stats[0].Processed, stats[0].Failed
	}
	p0, _ := processed()
	time.Sleep(10 * time.Second)
	p1, failed := processed()
	if ran := p1 - p0; ran < 6 || ran > 14 || failed != 0 {
		t.Fatalf("the periodic queue processed %d tasks in 10 s (%d failed): want 10 ± 4, one per tick of each job", ran, failed)
	}
	t.Logf("periodic ticks: %d processed in 10 s by two workers from two schedulers", p1-p0)

	// asynqmon on the cluster lists every queue.
	resp := operatorGet(t, "http://"+apis[0]+"/monitoring/api/queues", token)
	defer resp.Body.Close()
	var listed struct {
		Queues []struct {
			Queue string `json:"queue"`
		} `json:"queues"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&listed); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("asynqmon queues: %d, %v", resp.StatusCode, err)
	}
	names := map[string]bool{}
	for _, q := range listed.Queues {
		names[q.Queue] = true
	}
	for _, q := range append((task.Ingest{Queues: clusterQueues}).QueueNames(), task.QueuePeriodic) {
		if !names[q] {
			t.Errorf("asynqmon does not list queue %s: %v", q, names)
		}
	}
}

// operatorGet GETs url with the operator token; the caller closes the body.
func operatorGet(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
