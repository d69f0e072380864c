package api

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// publicRoutes are the routes meant to be reachable without operator credentials.
var publicRoutes = map[string]bool{
	"/open/statusUpload": true,
	"/open/logUpload":    true,
	"/healthz":           true,
	"/readyz":            true,
	"/metrics":           true,
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestEveryOperatorRouteNeedsCredentials walks every registered route: each one that is
// not a terminal or health route answers 401 without and with wrong credentials, and
// not 401 with the right ones.
func TestEveryOperatorRouteNeedsCredentials(t *testing.T) {
	h := newHarness(t)
	h.seedDevices(device("A1", 1, "0371", "B503", time.Now()))
	wrong := []struct{ name, header string }{
		{"none", ""},
		{"empty bearer", "Bearer "},
		{"wrong bearer", "Bearer " + testToken + "x"},
		{"prefix of the token", "Bearer " + testToken[:len(testToken)-1]},
		{"token without scheme", testToken},
		{"wrong basic password", basic("op", "nope")},
		{"token as basic user", basic(testToken, "")},
	}
	checked := 0
	for _, r := range h.srv.echo.Routes() {
		if publicRoutes[r.Path] || r.Method == echo.RouteNotFound {
			continue
		}
		path := strings.NewReplacer(":sn", "A1", ":id", "1", "*", "").Replace(r.Path)
		apiRoute := strings.HasPrefix(r.Path, "/api/v1/")
		checked++
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			for _, w := range wrong {
				rec := h.do(r.Method, path, "", "Authorization", w.header)
				if rec.Code != http.StatusUnauthorized {
					t.Fatalf("%s: status %d, want 401: %s", w.name, rec.Code, rec.Body)
				}
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Fatalf("%s: no WWW-Authenticate challenge", w.name)
				}
				if r.Method != http.MethodHead {
					wantError(t, rec, http.StatusUnauthorized, "operator credentials")
				}
			}
			right := []string{"Bearer " + testToken, "bearer " + testToken}
			if apiRoute {
				// The API takes only Bearer; Basic is for browsers on the HTML pages.
				if rec := h.do(r.Method, path, "", "Authorization", basic("op", testToken)); rec.Code != http.StatusUnauthorized {
					t.Fatalf("basic on the API: status %d, want 401", rec.Code)
				}
			} else {
				right = append(right, basic("op", testToken), basic("", testToken))
			}
			for _, hdr := range right {
				rec := h.do(r.Method, path, "", "Authorization", hdr)
				if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden || rec.Code >= 500 {
					t.Fatalf("%q: status %d: %s", hdr, rec.Code, rec.Body)
				}
			}
		})
	}
	if checked < 8 {
		t.Fatalf("only %d operator routes registered", checked)
	}
	// Unknown paths under the operator prefixes reveal nothing without credentials.
	for _, target := range []string{"/api/v1/nothing", "/api/v1"} {
		wantError(t, h.do(http.MethodGet, target, ""), http.StatusUnauthorized, "operator credentials")
		wantError(t, h.get(target), http.StatusNotFound, "Not Found")
	}
}

func TestOperatorRoutesAnswerWithRightCredentials(t *testing.T) {
	h := newHarness(t)
	h.seedDevices(device("A1", 1, "0371", "B503", time.Now()))
	for _, target := range []string{"/api/v1/devices", "/api/v1/devices/A1", "/api/v1/devices/A1/reports", "/api/v1/openapi.yaml", "/fleet"} {
		if rec := h.get(target); rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d %s", target, rec.Code, rec.Body)
		}
	}
	rec := h.do(http.MethodGet, "/monitoring/", "", "Authorization", basic("op", testToken))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<div id=\"root\">") {
		t.Fatalf("asynqmon with Basic: %d %.200s", rec.Code, rec.Body)
	}
	rec = h.do(http.MethodGet, "/monitoring/api/queues", "", "Authorization", "Bearer "+testToken)
	if rec.Code != http.StatusOK {
		t.Fatalf("asynqmon API with Bearer: %d %s", rec.Code, rec.Body)
	}
}

func TestPublicRoutesNeedNoOperatorCredentials(t *testing.T) {
	h := newHarness(t)
	for _, target := range []string{"/healthz", "/readyz", "/metrics"} {
		if rec := h.do(http.MethodGet, target, ""); rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d %s", target, rec.Code, rec.Body)
		}
	}
	if rec := h.postReport(fixture); rec.Code != http.StatusOK {
		t.Fatalf("statusUpload = %d %s", rec.Code, rec.Body)
	}
}

func TestReadOnlyTokenOnlyReads(t *testing.T) {
	h := newHarness(t)
	if rec := h.do(http.MethodGet, "/api/v1/devices", "", "Authorization", "Bearer "+testROToken); rec.Code != http.StatusOK {
		t.Fatalf("read-only GET = %d %s", rec.Code, rec.Body)
	}
	if rec := h.do(http.MethodGet, "/monitoring/api/queues", "", "Authorization", basic("ro", testROToken)); rec.Code != http.StatusOK {
		t.Fatalf("read-only asynqmon GET = %d %s", rec.Code, rec.Body)
	}
	// Asynqmon's read-only mode hides the buttons; the middleware refuses the calls too.
	rec := h.do(http.MethodPost, "/monitoring/api/queues/ingest:pause", "", "Authorization", basic("ro", testROToken))
	wantError(t, rec, http.StatusForbidden, "read-only")
	rec = h.do(http.MethodDelete, "/monitoring/api/queues/ingest", "", "Authorization", "Bearer "+testROToken)
	wantError(t, rec, http.StatusForbidden, "read-only")
}

// TestNewRefusesNoOperatorToken: a server without an operator token is never built.
func TestNewRefusesNoOperatorToken(t *testing.T) {
	_, opt := prepareHarness(t, func(o *Options) { o.OperatorToken, o.ReadOnlyToken = "", "" })
	if _, err := New(opt); err == nil || !strings.Contains(err.Error(), "no operator token") {
		t.Fatalf("New without an operator token: err = %v", err)
	}
}

// TestEmptyTokenRefusesEverything guards the server itself: even if its token were
// emptied after New, no credential would open the operator routes.
func TestEmptyTokenRefusesEverything(t *testing.T) {
	h := newHarness(t)
	h.srv.opt.OperatorToken, h.srv.opt.ReadOnlyToken = "", ""
	for _, hdr := range []string{"", "Bearer ", "Bearer x", basic("", ""), basic("op", ""), "Bearer " + testToken, "Bearer " + testROToken} {
		for _, target := range []string{"/api/v1/devices", "/monitoring/", "/fleet"} {
			if rec := h.do(http.MethodGet, target, "", "Authorization", hdr); rec.Code != http.StatusUnauthorized {
				t.Errorf("%s with %q = %d", target, hdr, rec.Code)
			}
		}
	}
}
