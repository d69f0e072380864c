package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"monitor/internal/testenv"
	"monitor/model"
)

// seedFleetPage stores a fleet of 2 tenants in 3 places with known online/offline counts.
func seedFleetPage(h *harness) {
	now := time.Now()
	gone := now.Add(-3 * time.Hour)
	h.seedDevices(
		device("T1-ZZ-ON1", 1, "0371", "B503", now),
		device("T1-ZZ-ON2", 1, "0371", "B503", now.Add(-time.Minute)),
		device("T1-ZZ-OFF1", 1, "0371", "B503", gone),
		device("T1-BJ-ON1", 1, "0010", "C100", now),
		device("T2-ZZ-OFF1", 2, "0371", "B503", gone.Add(-time.Hour)),
		device("T2-ZZ-OFF2", 2, "0371", "C100", gone.Add(-2*time.Hour)),
	)
}

// placeRow matches a row of the page's table of places.
var placeRow = regexp.MustCompile(`data-tenant="(\d+)" data-city="([^"]*)"><td>\d+</td><td>[^<]*</td><td class="n online">(\d+)</td><td class="n offline">(\d+)</td><td class="n">(\d+)</td>`)

// placeCounts maps "tenant city" to "online/offline/total" for each row of the page.
func placeCounts(html string) map[string]string {
	out := map[string]string{}
	for _, m := range placeRow.FindAllStringSubmatch(html, -1) {
		out[m[1]+" "+m[2]] = m[3] + "/" + m[4] + "/" + m[5]
	}
	return out
}

var wantPlaces = map[string]string{"1 0010": "1/0/1", "1 0371": "2/1/3", "2 0371": "0/2/2"}

func checkFleetPage(t *testing.T, html string) {
	t.Helper()
	got := placeCounts(html)
	if fmt.Sprint(got) != fmt.Sprint(wantPlaces) {
		t.Fatalf("places = %v, want %v in:\n%s", got, wantPlaces, html)
	}
	for _, want := range []string{`id="total">6<`, `id="online">3<`, `id="offline">3<`, "T1-ZZ-OFF1", "T2-ZZ-OFF2", `href="/monitoring/"`} {
		if !strings.Contains(html, want) {
			t.Fatalf("page lacks %q:\n%s", want, html)
		}
	}
	// Online devices are not in the offline list.
	if strings.Contains(html, "T1-ZZ-ON1") {
		t.Fatalf("an online device is listed as offline:\n%s", html)
	}
}

func TestFleetPage(t *testing.T) {
	h := newHarness(t)
	seedFleetPage(h)
	rec := h.do(http.MethodGet, "/fleet", "", "Authorization", basic("op", testToken))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("fleet = %d %s", rec.Code, rec.Header())
	}
	checkFleetPage(t, rec.Body.String())
}

// TestFleetPageEscapesDeviceText: city and type come from terminals, so the page must
// show them as text, never as markup.
func TestFleetPageEscapesDeviceText(t *testing.T) {
	h := newHarness(t)
	h.seedDevices(device("EVIL", 1, "<b>x</b>", `"><img>`, time.Now().Add(-2*time.Hour)))
	html := h.do(http.MethodGet, "/fleet", "", "Authorization", basic("op", testToken)).Body.String()
	if strings.Contains(html, "<b>x</b>") || strings.Contains(html, `"><img>`) || !strings.Contains(html, "&lt;b&gt;x&lt;/b&gt;") {
		t.Fatalf("device text not escaped:\n%s", html)
	}
}

func TestFleetPageShowsFiringAlerts(t *testing.T) {
	h := newHarness(t)
	seedFleetPage(h)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	alerts := []model.Alert{
		{SN: "T1-ZZ-OFF1", Kind: model.AlertOffline, Tenant: 1, City: "0371", State: model.AlertFiring, StartsAt: at},
		{SN: "T2-OLD", Kind: model.AlertOffline, Tenant: 2, City: "0371", State: model.AlertResolved, StartsAt: at, EndsAt: &at},
	}
	if err := h.db.Create(&alerts).Error; err != nil {
		t.Fatal(err)
	}
	html := h.do(http.MethodGet, "/fleet", "", bearer...).Body.String()
	if !strings.Contains(html, `id="firing">1<`) || !strings.Contains(html, "<td>device_offline</td><td>T1-ZZ-OFF1</td>") ||
		strings.Contains(html, "T2-OLD") {
		t.Fatalf("firing alerts missing:\n%s", html)
	}
}

// TestFleetPageCountsBeyondTheListCap: with more firing alerts and offline devices than
// the page lists, the headline carries the true counts and each list says it shows N of M.
func TestFleetPageCountsBeyondTheListCap(t *testing.T) {
	h := newHarness(t)
	const firing, offline = 2506, maxFleetPageRows + 7
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	alerts := make([]model.Alert, 0, firing+3)
	for i := range firing {
		alerts = append(alerts, model.Alert{SN: fmt.Sprintf("F%05d", i), Kind: model.AlertOffline, Tenant: 1, City: "0371",
			State: model.AlertFiring, StartsAt: at.Add(time.Duration(i) * time.Second)})
	}
	for i := range 3 {
		alerts = append(alerts, model.Alert{SN: fmt.Sprintf("R%05d", i), Kind: model.AlertOffline, Tenant: 1, City: "0371",
			State: model.AlertResolved, StartsAt: at, EndsAt: &at})
	}
	if err := h.db.CreateInBatches(alerts, 500).Error; err != nil {
		t.Fatal(err)
	}
	gone := time.Now().Add(-3 * time.Hour)
	devs := []model.Device{device("ON1", 1, "0371", "B503", time.Now())}
	for i := range offline {
		devs = append(devs, device(fmt.Sprintf("OFF%04d", i), 1, "0371", "B503", gone.Add(-time.Duration(i)*time.Second)))
	}
	h.seedDevices(devs...)

	html := h.do(http.MethodGet, "/fleet", "", bearer...).Body.String()
	for _, want := range []string{
		fmt.Sprintf(`id="firing">%d<`, firing),
		fmt.Sprintf(`id="offline">%d<`, offline),
		fmt.Sprintf(`id="total">%d<`, offline+1),
		fmt.Sprintf(`id="alerts-shown">Showing %d of %d`, maxFleetPageRows, firing),
		fmt.Sprintf(`id="offline-shown">Showing %d of %d`, maxFleetPageRows, offline),
		fmt.Sprintf("<td>F%05d</td>", firing-1), // the newest alert is listed
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if got := strings.Count(html, "<td>device_offline</td>"); got != maxFleetPageRows {
		t.Errorf("page lists %d alerts, want the cap %d", got, maxFleetPageRows)
	}
	if strings.Contains(html, "R00000") {
		t.Error("a resolved alert is listed")
	}
}

// chromium finds the browser. Installing it is .ci/run's job, so without one the test
// fails under MONITOR_TEST_REAL=1 and skips otherwise.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium is not installed (apt-get install -y chromium)")
	return ""
}

// browse loads target in headless Chromium and returns the DOM after scripts ran (or,
// with a png path, writes a screenshot instead).
func browse(t *testing.T, bin, target, png string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		// Only the test server is reachable; asynqmon's web fonts fail at once instead of timing out.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=10000"}
	if png != "" {
		args = append(args, "--window-size=1200,900", "--screenshot="+png)
	} else {
		args = append(args, "--dump-dom")
	}
	cmd := exec.CommandContext(ctx, bin, append(args, target)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", target, err, stderr.String())
	}
	return string(out)
}

// TestFleetPageInBrowser renders /fleet and asynqmon in headless Chromium, logging in
// with HTTP Basic (the token as password) as an operator's browser does.
func TestFleetPageInBrowser(t *testing.T) {
	bin := chromium(t)
	h := newHarness(t)
	seedFleetPage(h)
	ts := h.serve()
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	withAuth := *u
	withAuth.User = url.UserPassword("operator", testToken)

	dom := browse(t, bin, withAuth.String()+"/fleet", "")
	checkFleetPage(t, dom)

	// Without credentials the browser is asked to log in (headless it shows nothing), and
	// never gets the page.
	dom = browse(t, bin, ts.URL+"/fleet", "")
	if strings.Contains(dom, "T1-ZZ-OFF1") || strings.Contains(dom, "Fleet") {
		t.Fatalf("fleet without credentials:\n%s", dom)
	}

	// Asynqmon's index is a JavaScript app: its scripts must load (behind the same Basic
	// auth) and render the queue view from its API.
	if rec := h.postReport(fixture); rec.Code != http.StatusOK {
		t.Fatalf("seed a queue: %d", rec.Code)
	}
	dom = browse(t, bin, withAuth.String()+"/monitoring/", "")
	// The title comes with the index, the rendered root with its scripts, and the queue
	// name only from its API: all three went through the Basic auth.
	if !strings.Contains(dom, "<title>Asynq - Monitoring</title>") || !strings.Contains(dom, `<div id="root"><div`) ||
		!strings.Contains(dom, ">ingest<") {
		t.Fatalf("asynqmon did not render its queues:\n%.3000s", dom)
	}

	if dir := os.Getenv("MONITOR_SCREENSHOT_DIR"); dir != "" {
		browse(t, bin, withAuth.String()+"/fleet", filepath.Join(dir, "fleet.png"))
		browse(t, bin, withAuth.String()+"/monitoring/", filepath.Join(dir, "asynqmon.png"))
	}
}
