package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestDatabaseOutageIsA503 closes the database under every route that reads or writes
// it: each must answer 503 with the generic message, never a 400 or a 500, and never
// the driver's error text.
func TestDatabaseOutageIsA503(t *testing.T) {
	h := newHarness(t)
	sqlDB, err := h.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlDB.Close(); err != nil {
		t.Fatal(err)
	}
	auth := []string{"Authorization", "Bearer " + testToken}
	for _, tc := range []struct{ method, target, body string }{
		{http.MethodGet, "/api/v1/devices", ""},
		{http.MethodGet, "/api/v1/devices/A1", ""},
		{http.MethodGet, "/api/v1/devices/A1/reports", ""},
		{http.MethodPost, "/api/v1/devices/A1/commands", `{"type":"upload_logs"}`},
		{http.MethodGet, "/api/v1/commands", ""},
		{http.MethodGet, "/api/v1/logs", ""},
		{http.MethodGet, "/api/v1/logs/1", ""},
		{http.MethodGet, "/api/v1/alerts", ""},
		{http.MethodGet, "/fleet", ""},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			rec := h.do(tc.method, tc.target, tc.body, auth...)
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status = %d %s, want 503", rec.Code, rec.Body)
			}
			if body := rec.Body.String(); !strings.Contains(body, "database unavailable") || strings.Contains(body, "sql:") {
				t.Fatalf("body = %s", body)
			}
		})
	}
}
