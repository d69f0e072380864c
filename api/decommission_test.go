package api

import (
	"net/http"
	"testing"
	"time"

	"monitor/model"
)

// TestDecommissionRoute: only the operator token decommissions; the read-only token
// gets 403 and leaves the device; unknown devices are 404 and bad sn 400.
func TestDecommissionRoute(t *testing.T) {
	h := newHarness(t)
	now := time.Now().UTC()
	h.seedDevices(model.Device{SN: "GONE", Tenant: 1, FirstSeen: now, LastSeen: now})
	if rec := h.do(http.MethodDelete, "/api/v1/devices/GONE", "", "Authorization", "Bearer "+testROToken); rec.Code != http.StatusForbidden {
		t.Fatalf("read-only DELETE: %d %s, want 403", rec.Code, rec.Body)
	}
	if n := h.rows("devices"); n != 1 {
		t.Fatalf("after a refused DELETE devices has %d rows, want 1", n)
	}
	if rec := h.do(http.MethodDelete, "/api/v1/devices/GONE", "", bearer...); rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s, want 204", rec.Code, rec.Body)
	}
	if n := h.rows("devices"); n != 0 {
		t.Fatalf("after DELETE devices has %d rows, want 0", n)
	}
	for target, want := range map[string]int{
		"/api/v1/devices/GONE":       http.StatusNotFound,
		"/api/v1/devices/bad.sn":     http.StatusBadRequest,
		"/api/v1/devices/GONE?x=1":   http.StatusBadRequest,
		"/api/v1/devices/NEVERSEEN1": http.StatusNotFound,
	} {
		if rec := h.do(http.MethodDelete, target, "", bearer...); rec.Code != want {
			t.Errorf("DELETE %s: %d %s, want %d", target, rec.Code, rec.Body, want)
		}
	}
	if got := h.get("/api/v1/devices/GONE"); got.Code != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d, want 404", got.Code)
	}
}
