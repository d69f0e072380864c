package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/goleak"

	"monitor/alert"
	"monitor/api"
	"monitor/command"
	monitorfleet "monitor/fleet"
	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"
	"monitor/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeServer answers /open/statusUpload with the status answer picks for each decoded report.
type fakeServer struct {
	mu      sync.Mutex
	reports []model.Report
	answer  func(r model.Report) int
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r, err := model.ParseReport(body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"code":400,"msg":%q}`, err.Error())
		return
	}
	f.mu.Lock()
	f.reports = append(f.reports, r)
	f.mu.Unlock()
	status := http.StatusOK
	if f.answer != nil {
		status = f.answer(r)
	}
	w.WriteHeader(status)
	if status == http.StatusOK {
		io.WriteString(w, `{"code":0,"msg":"ok","cmd":0,"cmdId":0}`)
		return
	}
	fmt.Fprintf(w, `{"code":%d,"msg":"no"}`, status)
}

func deviceOf(t *testing.T, prefix, sn string) int {
	t.Helper()
	var d int
	if _, err := fmt.Sscanf(strings.TrimPrefix(sn, prefix), "%d", &d); err != nil {
		t.Errorf("sn %q: %v", sn, err) // called from server goroutines: no Fatal
		return -1
	}
	return d
}

func TestBurstCountsStatuses(t *testing.T) {
	for _, client := range []string{"raw", "std"} {
		t.Run(client, func(t *testing.T) { testBurstCountsStatuses(t, client) })
	}
}

func testBurstCountsStatuses(t *testing.T, client string) {
	const prefix = "T1-"
	fake := &fakeServer{answer: func(r model.Report) int {
		switch d := deviceOf(t, prefix, r.SN); {
		case d%10 == 3:
			return http.StatusServiceUnavailable
		case d%25 == 0:
			return http.StatusTooManyRequests
		default:
			return http.StatusOK
		}
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	res, err := Simulate(t.Context(), Options{URL: srv.URL, Devices: 200, Concurrency: 8, Mode: "burst",
		SNPrefix: prefix, Timeout: 5 * time.Second, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	// Devices 0..199: 20 end in 3 (503); 8 are multiples of 25 (429), none of them ending in 3.
	if res.Sent != 200 || res.Accepted != 172 {
		t.Errorf("sent %d accepted %d, want 200 and 172", res.Sent, res.Accepted)
	}
	if res.Statuses["503"] != 20 || res.Statuses["429"] != 8 || len(res.Statuses) != 2 || res.TransportErrors != 0 {
		t.Errorf("statuses %v transport %d, want 20×503 and 8×429", res.Statuses, res.TransportErrors)
	}
	if res.P50ms <= 0 || res.P99ms < res.P50ms || res.MaxMs < res.P99ms {
		t.Errorf("latencies p50 %v p99 %v max %v are not ordered", res.P50ms, res.P99ms, res.MaxMs)
	}
	// Reports carry the current date, so the history's retention never drops them.
	if since := time.Since(baseTime); since < 0 || since >= 24*time.Hour+time.Minute {
		t.Errorf("reports dated from %v, %v ago: not today", baseTime, since)
	}
	seen := map[string]bool{}
	for _, r := range fake.reports {
		if seen[r.SN] {
			t.Errorf("device %s reported twice in a burst", r.SN)
		}
		seen[r.SN] = true
		if r.NDate != baseTime.Format(time.DateOnly) || r.NTime != "00:00:00" || len(r.SN) != len(prefix)+3 {
			t.Errorf("report %+v: want each device's first report at the base time, sn padded to 3 digits", r)
		}
	}
	if len(seen) != 200 {
		t.Errorf("%d distinct devices reported, want 200", len(seen))
	}
}

func TestTransportErrorsAreCounted(t *testing.T) {
	for _, client := range []string{"raw", "std"} {
		t.Run(client, func(t *testing.T) { testTransportErrorsAreCounted(t, client) })
	}
}

func testTransportErrorsAreCounted(t *testing.T, client string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close() // no answer at all
	}))
	defer srv.Close()
	res, err := Simulate(t.Context(), Options{URL: srv.URL, Devices: 10, Concurrency: 2, Mode: "burst",
		SNPrefix: "T2-", Timeout: 5 * time.Second, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 0 || res.TransportErrors != 10 || res.FirstError == "" {
		t.Errorf("accepted %d transport errors %d (%q), want 0 and 10", res.Accepted, res.TransportErrors, res.FirstError)
	}
}

func TestSteadyGivesEveryReportItsOwnKey(t *testing.T) {
	fake := &fakeServer{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	res, err := Simulate(t.Context(), Options{URL: srv.URL, Devices: 7, Concurrency: 4, Mode: "steady",
		Rate: 200, Duration: 250 * time.Millisecond, SNPrefix: "T3-", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 50 || res.Accepted != 50 {
		t.Fatalf("sent %d accepted %d, want 50 (200/s for 0.25s)", res.Sent, res.Accepted)
	}
	keys := map[string]bool{}
	perDevice := map[string]int{}
	for _, r := range fake.reports {
		k := r.SN + " " + r.NDate + " " + r.NTime
		if keys[k] {
			t.Errorf("report key %s sent twice", k)
		}
		keys[k] = true
		perDevice[r.SN]++
	}
	// 50 reports round-robin over 7 devices: 1 device sends 8, the others 7.
	if len(perDevice) != 7 {
		t.Errorf("%d devices reported, want 7", len(perDevice))
	}
	for sn, n := range perDevice {
		if n != 7 && !(sn == "T3-0" && n == 8) {
			t.Errorf("device %s sent %d reports", sn, n)
		}
	}
}

func TestOptionsAreValidated(t *testing.T) {
	for _, args := range [][]string{
		{"--devices", "0"},
		{"--concurrency", "0"},
		{"--mode", "wave"},
		{"--mode", "steady", "--rate", "0"},
		{"--sn-prefix", "bad'prefix"},
		{"--sn-prefix", strings.Repeat("x", 30), "--devices", "1000"},
		{"--tenant", "4294967296"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	o, err := parseFlags([]string{"--devices", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(o.SNPrefix, "S") || o.URL != "http://127.0.0.1:8888" || o.Mode != "burst" {
		t.Errorf("defaults: %+v", o)
	}
}

func TestLikePrefixEscapesWildcards(t *testing.T) {
	if got := likePrefix(`a_b%c\`); got != `a\_b\%c\\%` {
		t.Errorf("likePrefix = %q", got)
	}
}

// mysqlDB returns a migrated MySQL database (the landing check speaks MySQL only); when
// only SQLite is available it fails under MONITOR_TEST_REAL=1 and skips otherwise.
func mysqlDB(t *testing.T) *testenv.Database {
	t.Helper()
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "the landing check needs MySQL; none is reachable")
	}
	return db
}

// TestLandingFindsLostAndDuplicatedRows runs against a server that stores reports itself,
// loses one acknowledged report, stores another twice and stores a refused one anyway.
func TestLandingFindsLostAndDuplicatedRows(t *testing.T) {
	db := mysqlDB(t)
	// Without the unique key a duplicate can be stored, so the check must see it.
	if err := db.DB.Exec("ALTER TABLE tb_status DROP INDEX uk_status_report").Error; err != nil {
		t.Fatal(err)
	}
	const prefix = "T4_"
	insert := func(r model.Report) {
		err := db.DB.Exec("INSERT INTO tb_status (sn,ndate,ntime,accepted_at) VALUES (?,?,?,?)",
			r.SN, r.NDate, r.NTime, time.Now().UTC()).Error
		if err != nil {
			t.Errorf("insert: %v", err)
		}
	}
	fake := &fakeServer{answer: func(r model.Report) int {
		switch deviceOf(t, prefix, r.SN) {
		case 5: // acknowledged, never stored
			return http.StatusOK
		case 6: // stored twice
			insert(r)
			insert(r)
			return http.StatusOK
		case 7: // stored, but the terminal is told to retry
			insert(r)
			return http.StatusServiceUnavailable
		}
		insert(r)
		return http.StatusOK
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	// Rows of another run with a prefix that LIKE would match if "_" were not escaped.
	if err := db.DB.Exec("INSERT INTO tb_status (sn,ndate,ntime,accepted_at) VALUES ('T4x9','2024-01-01','00:00:00',NOW())").Error; err != nil {
		t.Fatal(err)
	}

	res, err := Simulate(t.Context(), Options{URL: srv.URL, Devices: 20, Concurrency: 4, Mode: "burst",
		SNPrefix: prefix, Timeout: 5 * time.Second, DSN: db.DSN, LandTimeout: 300 * time.Millisecond, PollEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 19 || res.Statuses["503"] != 1 {
		t.Errorf("accepted %d statuses %v, want 19 and one 503", res.Accepted, res.Statuses)
	}
	want := Land{Landed: false, Rows: 20, Lost: 1, Duplicated: 1, Unacknowledged: 1}
	got := *res.Land
	got.Seconds, got.EndToEndPerSec = 0, 0
	if got != want {
		t.Errorf("land = %+v, want %+v", got, want)
	}
	if res.Land.Seconds < 0.3 {
		t.Errorf("gave up after %.2fs, before the land timeout", res.Land.Seconds)
	}
}

// TestEndToEndAgainstMonitor runs a burst and a steady run through the real API, Redis,
// the aggregating worker and MySQL, and checks that everything landed exactly once.
func TestEndToEndAgainstMonitor(t *testing.T) {
	rds := testenv.NewRedis(t)
	db := mysqlDB(t)
	log := testenv.Logger(t)
	wsrv, err := worker.NewServer(rds.Opt(), worker.ServerOptions{GroupMaxDelay: 500 * time.Millisecond,
		GroupGracePeriod: time.Second, GroupMaxSize: 100, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := asynq.NewServeMux()
	mux.Handle(task.TypeStatusBatch, worker.NewBatchWriter(db.DB, log))
	if err := wsrv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer wsrv.Shutdown()
	enqueuer := asynq.NewClient(rds.Opt())
	defer enqueuer.Close()
	fl := monitorfleet.New(rds.Client, 1)
	cmds, err := command.New(db.DB, fl, command.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := alert.NewDecommissioner(db.DB, fl, alert.DecommissionOptions{Commands: cmds, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv, err := api.New(api.Options{Logger: log, Enqueuer: enqueuer, Fleet: fl, Commands: cmds, Decommissioner: dec, DB: db.DB, Redis: rds.Client,
		Monitoring: http.NotFoundHandler(), OperatorToken: "simulate-test-operator-token", LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apiSrv.Handler())
	defer srv.Close()

	for _, o := range []Options{
		{Mode: "burst", Devices: 300, SNPrefix: "E2E-B-"},
		{Mode: "steady", Devices: 40, Rate: 400, Duration: 500 * time.Millisecond, SNPrefix: "E2E-S-"},
	} {
		t.Run(o.Mode, func(t *testing.T) {
			o.URL, o.Concurrency, o.Timeout = srv.URL, 8, 10*time.Second
			o.DSN, o.LandTimeout, o.PollEvery = db.DSN, time.Minute, 50*time.Millisecond
			res, err := Simulate(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			want := o.total()
			if res.Sent != want || res.Accepted != want || len(res.Statuses) != 0 || res.TransportErrors != 0 {
				t.Fatalf("sent %d accepted %d errors %v/%d (%s), want %d accepted", res.Sent, res.Accepted,
					res.Statuses, res.TransportErrors, res.FirstError, want)
			}
			l := res.Land
			if !l.Landed || l.Rows != want || l.Lost != 0 || l.Duplicated != 0 || l.Unacknowledged != 0 || l.Foreign != 0 {
				t.Errorf("land = %+v, want all %d rows landed once", *l, want)
			}
			var summary map[string]any
			b, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &summary); err != nil || summary["accepted"] != float64(want) {
				t.Errorf("JSON summary %s", b)
			}
		})
	}
}

// TestBaselineStoresEachReport runs a burst against the one-INSERT-per-request baseline.
func TestBaselineStoresEachReport(t *testing.T) {
	db := mysqlDB(t)
	sqlDB, err := openBaselineDB(t.Context(), db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	b, err := NewBaseline(t.Context(), sqlDB)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := httptest.NewServer(b)
	defer srv.Close()

	res, err := Simulate(t.Context(), Options{URL: srv.URL, Devices: 200, Concurrency: 16, Mode: "burst",
		SNPrefix: "BASE-", Timeout: 10 * time.Second, DSN: db.DSN, LandTimeout: 10 * time.Second, PollEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 200 || !res.Land.Landed || res.Land.Rows != 200 || res.Land.Lost != 0 {
		t.Errorf("accepted %d land %+v, want 200 rows", res.Accepted, *res.Land)
	}
	// A bad report is refused like the API refuses it, and nothing is stored.
	resp, err := http.Post(srv.URL+"/open/statusUpload", "application/json", strings.NewReader(`{"sn":"x'--","ndate":"2024-01-01","ntime":"00:00:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "sn") {
		t.Errorf("bad sn: %d %s %v", resp.StatusCode, msg, err)
	}
}

func TestRunPrintsSummary(t *testing.T) {
	srv := httptest.NewServer(&fakeServer{})
	defer srv.Close()
	var out, progress strings.Builder
	err := Run(context.Background(), []string{"--url", srv.URL, "--devices", "20", "--concurrency", "2", "--sn-prefix", "T5-"}, &out, &progress)
	if err != nil {
		t.Fatal(err)
	}
	// Not a terminal: plain lines, here only the last one (the run is shorter than 5s).
	if got := progress.String(); strings.Count(got, "\n") != 1 || strings.Contains(got, "\r") ||
		!strings.Contains(got, "sent 20/20") || !strings.Contains(got, "acknowledged 20  errors 0  p99 so far") {
		t.Errorf("progress %q", got)
	}
	for _, want := range []string{"accepted   20", "errors     none", "p99"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	progress.Reset()
	if err := Run(context.Background(), []string{"--url", srv.URL, "--devices", "3", "--json", "--progress=false"}, &out, &progress); err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil || res.Accepted != 3 {
		t.Errorf("--json printed %q (%v)", out.String(), err)
	}
	if progress.Len() != 0 {
		t.Errorf("--progress=false printed %q", progress.String())
	}
}

// TestFloorAnswersEveryReport runs a burst against the floor: every report is answered
// with the API's fixed reply, and a body that is not a report is refused.
func TestFloorAnswersEveryReport(t *testing.T) {
	srv := httptest.NewServer(NewFloor())
	defer srv.Close()
	res, err := Simulate(t.Context(), Options{URL: srv.URL, Devices: 200, Concurrency: 16, Mode: "burst",
		SNPrefix: "FLOOR-", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 200 || res.Sent != 200 {
		t.Errorf("accepted %d of %d, want 200", res.Accepted, res.Sent)
	}
	resp, err := http.Post(srv.URL+"/open/statusUpload", "application/json", strings.NewReader(`{"sn":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a report that does not decode: %d, want 400", resp.StatusCode)
	}
}
