package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"monitor/model"
)

const (
	keyTenant1 = "key-of-tenant-one-aaaa"
	keyTenant2 = "key-of-tenant-two-bbbb"
)

// tenantKeys turns device auth on with a key for tenants 1 and 2.
func tenantKeys(o *Options) {
	o.DeviceKeys = model.TenantKeys{1: keyTenant1, 2: keyTenant2}
}

func TestDeviceKeyPerTenant(t *testing.T) {
	h := newHarness(t, tenantKeys)
	tests := []struct {
		name   string
		tenant uint32
		key    string
		status int
		msg    string
	}{
		{"own key", 1, keyTenant1, http.StatusOK, "ok"},
		{"other tenant's own key", 2, keyTenant2, http.StatusOK, "ok"},
		{"tenant A's key for tenant B", 2, keyTenant1, http.StatusUnauthorized, "not the key of tenant 2"},
		{"tenant B's key for tenant A", 1, keyTenant2, http.StatusUnauthorized, "not the key of tenant 1"},
		{"no key", 1, "", http.StatusUnauthorized, "X-Device-Key: required"},
		{"prefix of the key", 1, keyTenant1[:len(keyTenant1)-1], http.StatusUnauthorized, "not the key"},
		{"tenant without a key", 3, keyTenant1, http.StatusUnauthorized, "not the key of tenant 3"},
	}
	accepted := 0
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.sub(t)
			before := h.ingestSize()
			rec := h.postReport(report(fmt.Sprintf("D%d", i), tt.tenant, i), "X-Device-Key", tt.key)
			if tt.status == http.StatusOK {
				accepted++
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			} else {
				wantError(t, rec, tt.status, tt.msg)
			}
			want := before
			if tt.status == http.StatusOK {
				want++
			}
			if got := h.ingestSize(); got != want {
				t.Fatalf("ingest queue went from %d to %d, want %d", before, got, want)
			}
		})
	}
	if accepted != 2 || h.ingestSize() != 2 {
		t.Fatalf("accepted %d, queued %d", accepted, h.ingestSize())
	}
}

func TestDeviceAuthOffAcceptsAnyKey(t *testing.T) {
	h := newHarness(t)
	for _, key := range []string{"", "whatever"} {
		if rec := h.postReport(report("D1", 5, len(key)), "X-Device-Key", key); rec.Code != http.StatusOK {
			t.Fatalf("key %q: %d %s", key, rec.Code, rec.Body)
		}
	}
}

// TestFloodingDeviceIsLimitedOthersAreNot: the rate is so low that no token comes back
// during the test, so the outcome does not depend on timing.
func TestFloodingDeviceIsLimitedOthersAreNot(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.DeviceRate, o.DeviceBurst = 0.001, 3 })
	for i := range 3 {
		if rec := h.postReport(report("FLOOD", 0, i)); rec.Code != http.StatusOK {
			t.Fatalf("report %d within the burst: %d %s", i, rec.Code, rec.Body)
		}
	}
	for i := 3; i < 6; i++ {
		rec := h.postReport(report("FLOOD", 0, i))
		wantError(t, rec, http.StatusTooManyRequests, "sn FLOOD:")
		secs, err := strconv.Atoi(rec.Header().Get("Retry-After"))
		if err != nil || secs < 1 || secs > 1000 {
			t.Fatalf("Retry-After = %q", rec.Header().Get("Retry-After"))
		}
	}
	if rec := h.postReport(report("CALM", 0, 1)); rec.Code != http.StatusOK {
		t.Fatalf("another device: %d %s", rec.Code, rec.Body)
	}
	if got := h.ingestSize(); got != 4 {
		t.Fatalf("queued %d reports, want the 3 of the burst and the other device's", got)
	}
	// Invalid reports are refused before the limiter and take no token from the device.
	for i := range 5 {
		bad := strings.Replace(report("CALM2", 0, i), "2021-08-07", "2021-02-30", 1)
		wantError(t, h.postReport(bad), http.StatusBadRequest, "ndate")
	}
	if rec := h.postReport(report("CALM2", 0, 1)); rec.Code != http.StatusOK {
		t.Fatalf("a device whose invalid reports were refused: %d %s", rec.Code, rec.Body)
	}
}

func TestDeviceAuthIsCheckedBeforeTheRateLimit(t *testing.T) {
	h := newHarness(t, func(o *Options) { tenantKeys(o); o.DeviceRate, o.DeviceBurst = 0.001, 2 })
	// Someone without the key cannot use up a device's budget.
	for i := range 10 {
		wantError(t, h.postReport(report("VICTIM", 1, i), "X-Device-Key", "guess"), http.StatusUnauthorized, "not the key")
	}
	if rec := h.postReport(report("VICTIM", 1, 20), "X-Device-Key", keyTenant1); rec.Code != http.StatusOK {
		t.Fatalf("the real device: %d %s", rec.Code, rec.Body)
	}
}

// TestNormalCadenceIsNeverLimited replays a day of a terminal reporting every 3 minutes
// with up to three quick retries per report, at the limits New defaults to.
func TestNormalCadenceIsNeverLimited(t *testing.T) {
	def := newHarness(t).srv.opt
	l := newDeviceLimiter(def.DeviceRate, def.DeviceBurst)
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for i := range 24 * 20 {
		at := now.Add(time.Duration(i) * 3 * time.Minute)
		for retry := range 4 {
			if ok, _ := l.allow("T1", at.Add(time.Duration(retry)*100*time.Millisecond)); !ok {
				t.Fatalf("report %d, try %d was limited", i, retry)
			}
		}
	}
	// Even a terminal resending its whole backlog of ten at once is not limited.
	for i := range def.DeviceBurst {
		if ok, _ := l.allow("T2", now); !ok {
			t.Fatalf("backlog report %d was limited", i)
		}
	}
}

func TestLimiterRefillsAndNamesTheWait(t *testing.T) {
	l := newDeviceLimiter(0.5, 2) // one token per 2s
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for range 2 {
		if ok, _ := l.allow("X", now); !ok {
			t.Fatal("burst refused")
		}
	}
	ok, wait := l.allow("X", now)
	if ok || wait != 2*time.Second {
		t.Fatalf("third = %v, wait %v; want refused with 2s", ok, wait)
	}
	ok, wait = l.allow("X", now.Add(1500*time.Millisecond))
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("after 1.5s = %v, wait %v; want refused with 0.5s", ok, wait)
	}
	if ok, _ := l.allow("X", now.Add(2*time.Second)); !ok {
		t.Fatal("a token did not come back after 2s")
	}
}

// TestLimiterMemoryStaysBounded touches 100,000 devices, then lets their buckets refill:
// the next requests sweep them away, so memory follows the recently active devices only.
func TestLimiterMemoryStaysBounded(t *testing.T) {
	l := newDeviceLimiter(1, 10)
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for i := range 100_000 {
		l.allow("DEV"+strconv.Itoa(i), now.Add(time.Duration(i)*time.Microsecond))
	}
	if n := l.size(); n != 100_000 {
		t.Fatalf("size = %d after 100k devices within 0.1s", n)
	}
	later := now.Add(l.idle + time.Second)
	// One request per shard triggers that shard's sweep.
	seen := map[uint32]bool{}
	for i := 0; len(seen) < limiterShards; i++ {
		sn := "NEW" + strconv.Itoa(i)
		if !seen[shardOf(sn)] {
			seen[shardOf(sn)] = true
			l.allow(sn, later)
		}
	}
	if n := l.size(); n != limiterShards {
		t.Fatalf("size = %d after the idle buckets were swept, want %d", n, limiterShards)
	}
	// A bucket still refilling is kept: its device is still limited after the sweep.
	for range 10 {
		l.allow("BUSY", later)
	}
	l.allow("NEW0", later.Add(l.idle-time.Millisecond)) // sweeps NEW0's shard only if due
	if ok, _ := l.allow("BUSY", later.Add(500*time.Millisecond)); ok {
		t.Fatal("a busy device's bucket was forgotten")
	}
}

func TestRateLimitErrorIsJSON(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.DeviceRate, o.DeviceBurst = 0.001, 1 })
	h.postReport(report("ONE", 0, 1))
	rec := h.postReport(report("ONE", 0, 2))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusTooManyRequests ||
		body["code"] != float64(429) || !strings.Contains(body["msg"].(string), "ONE") {
		t.Fatalf("429 body %s (%v)", rec.Body, err)
	}
}

// BenchmarkDeviceLimiter measures the limiter on the hot path, all goroutines at once:
// 100,000 devices seen before, and devices seen for the first time, as in a fleet's burst
// after an outage (each of those ops also makes its sn, one small string).
func BenchmarkDeviceLimiter(b *testing.B) {
	b.Run("seen", func(b *testing.B) {
		l := newDeviceLimiter(1, 10)
		sns := make([]string, 100_000)
		for i := range sns {
			sns[i] = "DEV" + strconv.Itoa(i)
			l.allow(sns[i], time.Now())
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				l.allow(sns[i%len(sns)], time.Now())
				i += 7919
			}
		})
	})
	b.Run("new", func(b *testing.B) {
		l := newDeviceLimiter(1, 10)
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := []byte("NEW")
			for pb.Next() {
				l.allow(string(strconv.AppendInt(buf[:3], next.Add(1), 10)), time.Now())
			}
		})
	})
}
