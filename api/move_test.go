package api

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"monitor/fleet"
	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"
	"monitor/worker"
)

// TestTenantKeyCannotTakeOverADevice is issue 8 item 7 end to end, with the batch writer
// running: the attacker's report must not rewrite devices.tenant (step 2), nor then let
// the attacker complete the victim's command with a forged log (step 4), and the real
// device keeps working. Then an operator moves the device to tenant 7, and only tenant
// 7's key works for it.
func TestTenantKeyCannotTakeOverADevice(t *testing.T) {
	h := newHarness(t, victimAndAttacker)
	srv, err := worker.NewServer(h.rdb.ConnOpt, worker.ServerOptions{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	mux := asynq.NewServeMux()
	mux.Handle(task.TypeStatusBatch, worker.NewBatchWriter(h.db, testenv.Logger(t)))
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()

	tenantOf := func() uint32 {
		t.Helper()
		var d model.Device
		if err := h.db.Take(&d, "sn = ?", "VICTIM").Error; err != nil {
			t.Fatalf("find device: %v", err)
		}
		return d.Tenant
	}
	stored := func(n int64) {
		t.Helper()
		testenv.WaitFor(t, 30*time.Second, "reports stored", func() bool { return h.rows("tb_status") >= n })
	}
	if rec := h.postReport(report("VICTIM", 0, 1), headerDeviceKey, keyZero); rec.Code != http.StatusOK {
		t.Fatalf("the real device: %d %s", rec.Code, rec.Body)
	}
	stored(1)
	cmd := h.createCommand("VICTIM", http.StatusCreated)
	upload := "/open/logUpload?sn=VICTIM&cmdId=" + strconv.FormatUint(cmd.ID, 10)

	// Steps 1-2: the attacker's report, then whatever the writer does with it.
	// Each step is checked with Errorf, so that without the fix every step shows.
	if rec := h.postReport(report("VICTIM", 7, 2), headerDeviceKey, keySeven); rec.Code != http.StatusUnauthorized {
		t.Errorf("step 1, the attacker's report: %d %s, want 401", rec.Code, rec.Body)
	}
	if rec := h.postReport(report("MARKER", 0, 3), headerDeviceKey, keyZero); rec.Code != http.StatusOK {
		t.Fatalf("marker report: %d %s", rec.Code, rec.Body)
	}
	// Once the marker is stored and the queue is idle, the attacker's report, had it
	// been enqueued, would have gone through the writer too.
	testenv.WaitFor(t, 30*time.Second, "the marker stored", func() bool {
		var n int64
		return h.db.Model(&model.Status{}).Where("sn = ?", "MARKER").Count(&n).Error == nil && n == 1
	})
	insp := h.inspector()
	testenv.WaitFor(t, 30*time.Second, "an idle queue", func() bool {
		q, err := insp.GetQueueInfo(task.QueueIngest)
		return err == nil && q.Pending+q.Active+q.Aggregating+q.Retry == 0
	})
	if got := tenantOf(); got != 0 {
		t.Errorf("step 2: devices.tenant of the victim is %d, want 0", got)
	}
	var forged int64
	if err := h.db.Model(&model.Status{}).Where("sn = ? AND tenant = ?", "VICTIM", 7).Count(&forged).Error; err != nil {
		t.Fatal(err)
	}
	if forged != 0 {
		t.Errorf("%d of the attacker's reports are in tb_status", forged)
	}
	// Step 4: a forged log for the victim's command.
	if rec := h.do(http.MethodPost, upload, "forged\n", headerDeviceKey, keySeven); rec.Code != http.StatusUnauthorized {
		t.Errorf("step 4, forged log upload: %d %s, want 401", rec.Code, rec.Body)
	}
	// The real device is not locked out: it reports and uploads its log.
	if rec := h.postReport(report("VICTIM", 0, 4), headerDeviceKey, keyZero); rec.Code != http.StatusOK {
		t.Errorf("the real device after the attack: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do(http.MethodPost, upload, "real\n", headerDeviceKey, keyZero); rec.Code != http.StatusOK {
		t.Errorf("the real device's log upload: %d %s", rec.Code, rec.Body)
	}

	// An operator moves the device; the read-only token may not.
	ro := []string{"Authorization", "Bearer " + testROToken}
	if rec := h.do(http.MethodPatch, "/api/v1/devices/VICTIM", `{"tenant":7}`, ro...); rec.Code != http.StatusForbidden {
		t.Fatalf("read-only move: %d %s", rec.Code, rec.Body)
	}
	if got := tenantOf(); got != 0 {
		t.Fatalf("read-only move changed the tenant to %d", got)
	}
	rec := h.do(http.MethodPatch, "/api/v1/devices/VICTIM", `{"tenant":7}`, bearer...)
	if rec.Code != http.StatusOK {
		t.Fatalf("move: %d %s", rec.Code, rec.Body)
	}
	if d := decode[deviceJSON](t, rec); d.SN != "VICTIM" || d.Tenant != 7 {
		t.Fatalf("moved device %+v", d)
	}
	if got := tenantOf(); got != 7 {
		t.Fatalf("devices.tenant after the move is %d, want 7", got)
	}
	wantError(t, h.postReport(report("VICTIM", 0, 5), headerDeviceKey, keyZero), http.StatusUnauthorized, "tenant 0")
	if rec := h.postReport(report("VICTIM", 7, 6), headerDeviceKey, keySeven); rec.Code != http.StatusOK {
		t.Fatalf("the new tenant's key after the move: %d %s", rec.Code, rec.Body)
	}
	stored(4)
	if got := tenantOf(); got != 7 {
		t.Fatalf("devices.tenant after the new tenant's report is %d, want 7", got)
	}
	cmd2 := h.createCommand("VICTIM", http.StatusCreated)
	upload = "/open/logUpload?sn=VICTIM&cmdId=" + strconv.FormatUint(cmd2.ID, 10)
	if rec := h.do(http.MethodPost, upload, "old\n", headerDeviceKey, keyZero); rec.Code != http.StatusUnauthorized {
		t.Fatalf("the old tenant's log upload after the move: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do(http.MethodPost, upload, "new\n", headerDeviceKey, keySeven); rec.Code != http.StatusOK {
		t.Fatalf("the new tenant's log upload after the move: %d %s", rec.Code, rec.Body)
	}
}

// TestMoveDeviceErrors checks the answers of PATCH /api/v1/devices/{sn} other than 200.
func TestMoveDeviceErrors(t *testing.T) {
	h := newHarness(t)
	h.seedDevices(device("A", 0, "0371", "B503", time.Now()))
	for _, tc := range []struct {
		name, sn, body string
		status         int
		msg            string
	}{
		{"unknown device", "NOPE", `{"tenant":1}`, http.StatusNotFound, "sn: no device NOPE"},
		{"no tenant", "A", `{}`, http.StatusBadRequest, "tenant: required"},
		{"null tenant", "A", `{"tenant":null}`, http.StatusBadRequest, "tenant: required"},
		{"negative tenant", "A", `{"tenant":-1}`, http.StatusBadRequest, "tenant: not a tenant number"},
		{"tenant too large", "A", `{"tenant":4294967296}`, http.StatusBadRequest, "tenant: not a tenant number"},
		{"tenant as text", "A", `{"tenant":"7"}`, http.StatusBadRequest, "tenant: not a tenant number"},
		{"unknown field", "A", `{"tenant":1,"city":"x"}`, http.StatusBadRequest, "city: unknown field"},
		{"not JSON", "A", `tenant=1`, http.StatusBadRequest, "tenant: bad JSON body"},
		{"trailing data", "A", `{"tenant":1} {"tenant":2}`, http.StatusBadRequest, "nothing after it"},
		{"bad sn", "a%20b", `{"tenant":1}`, http.StatusBadRequest, "sn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.sub(t).do(http.MethodPatch, "/api/v1/devices/"+tc.sn, tc.body, bearer...)
			wantError(t, rec, tc.status, tc.msg)
		})
	}
	var d model.Device
	if err := h.db.Take(&d, "sn = ?", "A").Error; err != nil || d.Tenant != 0 {
		t.Fatalf("device after refused moves: tenant %d, %v", d.Tenant, err)
	}
	if tenant, ok, err := h.srv.opt.Fleet.Tenant(context.Background(), "A"); err != nil || ok {
		t.Fatalf("refused moves bound A to tenant %d on Redis (%v, %v)", tenant, ok, err)
	}
	if rec := h.do(http.MethodPatch, "/api/v1/devices/A", `{"tenant":0}`); rec.Code != http.StatusUnauthorized {
		t.Fatalf("move without a token: %d", rec.Code)
	}
}

// TestMoveWithRedisDownMovesNothing: when Redis refuses the binding, the database's update
// rolls back, so the device is in neither place moved and the answer says so.
func TestMoveWithRedisDownMovesNothing(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() {
		if err := dead.Close(); err != nil {
			t.Error(err)
		}
	})
	h := newHarness(t, func(o *Options) { o.Fleet = fleet.New(dead, 1) })
	h.seedDevices(device("A", 0, "0371", "B503", time.Now()))
	rec := h.do(http.MethodPatch, "/api/v1/devices/A", `{"tenant":7}`, bearer...)
	wantError(t, rec, http.StatusServiceUnavailable, "not moved")
	var d model.Device
	if err := h.db.Take(&d, "sn = ?", "A").Error; err != nil || d.Tenant != 0 {
		t.Fatalf("device after a move Redis refused: tenant %d, %v; want 0", d.Tenant, err)
	}
}
