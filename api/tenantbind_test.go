package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"monitor/fleet"
	"monitor/internal/testenv"
	"monitor/model"
)

// Keys of the tenant-binding tests: the victim's tenant 0 and the attacker's tenant 7.
const (
	keyZero  = "key-zero-of-the-victim-000"
	keySeven = "key-seven-of-attacker-777"
)

func victimAndAttacker(o *Options) { o.DeviceKeys = model.TenantKeys{0: keyZero, 7: keySeven} }

// TestReportNamingAnotherTenantIsRefused is issue 8 item 7, steps 1 and 3: with tenant 7's
// key, a report naming tenant 0's device was accepted and its reply carried the victim's
// cmdId. Now it is a 401 that enqueues nothing, records no last-seen time, delivers no
// command, is logged without keys and counted.
func TestReportNamingAnotherTenantIsRefused(t *testing.T) {
	h := newHarness(t, victimAndAttacker)
	ctx := context.Background()
	if rec := h.postReport(report("VICTIM", 0, 1), headerDeviceKey, keyZero); rec.Code != http.StatusOK {
		t.Fatalf("the real device's first report: %d %s", rec.Code, rec.Body)
	}
	h.seedDevices(device("VICTIM", 0, "0371", "B503", time.Now())) // as the batch writer would
	cmd := h.createCommand("VICTIM", http.StatusCreated)

	seenBefore := h.rdb.Client.ZScore(ctx, fleet.NewShard(0, 1).LastSeen, "VICTIM").Val()
	queued := h.ingestSize()
	mismatches := counterValue(t, tenantMismatches)

	rec := h.postReport(report("VICTIM", 7, 2), headerDeviceKey, keySeven)
	wantError(t, rec, http.StatusUnauthorized, "does not belong to tenant 7")
	if r := decode[replyJSON](t, rec); r.Cmd != 0 || r.CmdID != 0 || strings.Contains(rec.Body.String(), "cmdId") {
		t.Fatalf("the refusal carries the victim's command: %s", rec.Body)
	}
	if got := h.ingestSize(); got != queued {
		t.Fatalf("the refused report was enqueued: ingest queue %d, want %d", got, queued)
	}
	if got := h.rdb.Client.ZScore(ctx, fleet.NewShard(0, 1).LastSeen, "VICTIM").Val(); got != seenBefore {
		t.Fatalf("the refused report moved last seen from %v to %v", seenBefore, got)
	}
	if n := h.rdb.Client.HLen(ctx, fleet.NewShard(0, 1).Deliveries).Val(); n != 0 {
		t.Fatalf("the refused report recorded %d deliveries", n)
	}
	if got := counterValue(t, tenantMismatches); got != mismatches+1 {
		t.Fatalf("monitor_device_tenant_mismatch_total went from %v to %v, want +1", mismatches, got)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "belongs to another tenant") || strings.Contains(logs, keySeven) || strings.Contains(logs, keyZero) {
		t.Fatalf("want the attempt logged without keys; logs:\n%s", logs)
	}

	// The real device keeps working and gets its command.
	rec = h.postReport(report("VICTIM", 0, 3), headerDeviceKey, keyZero)
	if rec.Code != http.StatusOK {
		t.Fatalf("the real device after the attempt: %d %s", rec.Code, rec.Body)
	}
	if r := decode[replyJSON](t, rec); r.Cmd != 1 || r.CmdID != cmd.ID {
		t.Fatalf("the real device's reply %+v, want its command %d", r, cmd.ID)
	}
	if got := h.ingestSize(); got != queued+1 {
		t.Fatalf("ingest queue %d, want %d", got, queued+1)
	}
}

// counterValue reads a counter's current value.
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestLogUploadFollowsTheBinding checks that /open/logUpload takes the device's tenant
// from the binding on Redis, as status reports do: a device whose first report is
// accepted but not yet written to devices can already upload under its tenant's key.
func TestLogUploadFollowsTheBinding(t *testing.T) {
	h := newHarness(t, victimAndAttacker)
	if rec := h.postReport(report("NEW7", 7, 1), headerDeviceKey, keySeven); rec.Code != http.StatusOK {
		t.Fatalf("first report: %d %s", rec.Code, rec.Body)
	}
	cmd := h.createCommand("NEW7", http.StatusCreated)
	target := "/open/logUpload?sn=NEW7&cmdId=" + strconv.FormatUint(cmd.ID, 10)
	if rec := h.do(http.MethodPost, target, "x\n", headerDeviceKey, keyZero); rec.Code != http.StatusUnauthorized {
		t.Fatalf("another tenant's key: %d %s, want 401", rec.Code, rec.Body)
	}
	if rec := h.do(http.MethodPost, target, "log\n", headerDeviceKey, keySeven); rec.Code != http.StatusOK {
		t.Fatalf("the bound tenant's key: %d %s, want 200", rec.Code, rec.Body)
	}
}

// TestRefusedFirstReportLeavesNoBinding: a new device's first report is bound before the
// enqueue; when the enqueue then fails (503) the binding must go again, since a refused
// request writes nothing, so the device's next report may name its real tenant.
func TestRefusedFirstReportLeavesNoBinding(t *testing.T) {
	dead := asynq.NewClient(asynq.RedisClientOpt{Addr: testenv.FreeAddr(t), DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() {
		if err := dead.Close(); err != nil {
			t.Error(err)
		}
	})
	h := newHarness(t, victimAndAttacker, func(o *Options) { o.Enqueuer = dead })
	rec := h.postReport(report("FRESH", 7, 1), headerDeviceKey, keySeven)
	wantError(t, rec, http.StatusServiceUnavailable, "nothing was accepted")
	if tenant, ok, err := h.srv.opt.Fleet.Tenant(context.Background(), "FRESH"); err != nil || ok {
		t.Fatalf("the refused first report left FRESH bound to tenant %d (%v, %v)", tenant, ok, err)
	}
}
