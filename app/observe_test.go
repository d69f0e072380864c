package app

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"monitor/internal/fixture"
	"monitor/internal/testenv"
	mmodel "monitor/model"
	"monitor/task"
)

// scrape is one /metrics page: every sample by its series ("name{a=\"x\",...}" with
// the labels sorted), and the names of the families it declares.
type scrape struct {
	samples map[string]float64
	names   map[string]bool
}

func getMetrics(t *testing.T, url string) scrape {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	s := scrape{samples: map[string]float64{}, names: map[string]bool{}}
	for name, mf := range families {
		s.names[name] = true
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}" // the client sorts labels by name
			}
			switch {
			case m.Counter != nil:
				s.samples[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.samples[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				s.samples[name+"_count"+strings.TrimPrefix(key, name)] = float64(m.GetHistogram().GetSampleCount())
				s.samples[name+"_sum"+strings.TrimPrefix(key, name)] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return s
}

// value returns the sample key of s, failing t when s lacks it.
func (s scrape) value(t *testing.T, key string) float64 {
	t.Helper()
	v, ok := s.samples[key]
	if !ok {
		t.Fatalf("/metrics has no %s", key)
	}
	return v
}

// TestMetricsAndLogsAfterARealIngest runs the api, worker and scheduler roles on real
// Redis and MySQL. With no worker yet, the reports wait in their batch tasks (one each:
// they were sent one at a time) and the API's /metrics shows them as the ingest queue's
// pending backlog; once a worker runs they
// land, and the counters moved by exactly the reports and batches sent. A notification
// that the webhook refuses once and then takes counts one failure and one send; its
// failure's log line carries the task id, and a refused request's line the request id.
func TestMetricsAndLogsAfterARealIngest(t *testing.T) {
	bin := testenv.MonitorBinary(t)
	r := testenv.NewRedis(t)
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "the roles need a real MySQL")
	}
	// A firing alert and a pending command before start, for the fleet families.
	key := mmodel.AlertOffline + ":GONE"
	if err := db.DB.Create(&mmodel.Alert{Kind: mmodel.AlertOffline, SN: "GONE", State: mmodel.AlertFiring,
		StartsAt: time.Now(), FiringKey: &key}).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.DB.Create(&mmodel.Command{SN: "GONE", Type: mmodel.CommandUploadLogs, State: mmodel.CommandPending,
		ExpiresAt: time.Now().Add(time.Hour)}).Error; err != nil {
		t.Fatal(err)
	}
	// A stand-in Prometheus records what asynqmon's Metrics page asks it.
	var promQueries testenv.SyncBuffer
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(&promQueries, r.URL.Query().Get("query"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
	}))
	defer prom.Close()
	var hookCalls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hookCalls.Add(1) == 1 {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer hook.Close()

	addr, workerAddr, schedAddr := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := []string{
		"MONITOR_REDIS_ADDR=" + r.Addr, fmt.Sprintf("MONITOR_REDIS_DB=%d", r.DB),
		"MONITOR_MYSQL_DSN=" + db.DSN,
		"MONITOR_OPERATOR_TOKEN=" + strings.Repeat("t", 24),
		"MONITOR_DEVICE_AUTH=tenant-key", "MONITOR_DEVICE_KEYS=0:key-zero,7:key-seven",
		"MONITOR_ALERT_WEBHOOK_URL=" + hook.URL,
		"MONITOR_SWEEP_EVERY=1s",
		"MONITOR_LOG_FORMAT=json",
		"MONITOR_PROMETHEUS_URL=" + prom.URL,
	}
	api := startProc(t, bin, append(env, "MONITOR_HTTP_ADDR="+addr), "api")
	api.waitStarted(t)
	before := getMetrics(t, "http://"+addr+"/metrics")

	const devices, perDevice = 30, 4
	post := func(body, deviceKey, requestID string) int {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/open/statusUpload", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Device-Key", deviceKey)
		if requestID != "" {
			req.Header.Set("X-Request-Id", requestID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	report := func(d, i int) string {
		b := fixture.WithField("sn", fmt.Sprintf(`"OBS%05d"`, d))
		return strings.Replace(b, `"ntime":"18:30:30"`, fmt.Sprintf(`"ntime":"18:30:%02d"`, i), 1)
	}
	for i := range perDevice {
		for d := range devices {
			if code := post(report(d, i), "key-zero", ""); code != http.StatusOK {
				t.Fatalf("report %d of device %d: %d", i, d, code)
			}
		}
	}
	// Device OBS00000 belongs to tenant 0 now: tenant 7 claiming it is refused and logged.
	const requestID = "obs-request-42"
	if code := post(strings.Replace(report(0, 9), `"tenant":0`, `"tenant":7`, 1), "key-seven", requestID); code != http.StatusUnauthorized {
		t.Fatalf("report of another tenant's device: %d, want 401", code)
	}

	// No worker runs: every report waits in its task, and the API's /metrics says so.
	// The queue metrics are cached for up to 5s.
	const sent = devices * perDevice
	var paused scrape
	testenv.WaitFor(t, 10*time.Second, "the pending backlog on /metrics", func() bool {
		paused = getMetrics(t, "http://"+addr+"/metrics")
		return paused.samples[`monitor_queue_size{queue="ingest",state="pending"}`] == sent
	})
	if got := paused.value(t, "monitor_reports_accepted_total") - before.samples["monitor_reports_accepted_total"]; got != sent {
		t.Fatalf("monitor_reports_accepted_total moved by %v, want %d", got, sent)
	}
	for _, k := range []string{`monitor_queue_size{queue="ingest",state="aggregating"}`, `monitor_queue_groups{queue="ingest"}`,
		`monitor_queue_processed_total{queue="ingest"}`,
		`monitor_queue_paused{queue="ingest"}`, `monitor_queue_size{queue="notify",state="archived"}`} {
		if got := paused.value(t, k); got != 0 {
			t.Fatalf("%s = %v with no worker, want 0", k, got)
		}
	}
	if got := paused.value(t, `monitor_queue_latency_seconds{queue="ingest"}`); got <= 0 || got > 60 {
		t.Fatalf("oldest pending task is %vs old", got)
	}
	if got := paused.value(t, `monitor_alerts_firing{kind="device_offline"}`); got != 1 {
		t.Fatalf("firing device_offline alerts %v, want 1", got)
	}
	if got := paused.value(t, `monitor_commands{state="pending"}`); got != 1 {
		t.Fatalf("pending commands %v, want 1", got)
	}

	// asynqmon's Metrics page reads the configured Prometheus, for series that the
	// recording rules of docker/prometheus/rules/asynqmon.yml make from monitor's.
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/monitoring/api/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("operator", strings.Repeat("t", 24))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("asynqmon metrics: %d %s", resp.StatusCode, body)
	}
	recorded := map[string]bool{}
	for _, q := range ruleQueries(t) {
		recorded[strings.TrimPrefix(q.where, "asynqmon.yml: ")] = true
	}
	asked := regexp.MustCompile(`asynq_[a-z_]+`).FindAllString(promQueries.String(), -1)
	if len(asked) == 0 {
		t.Fatal("asynqmon asked the configured Prometheus nothing")
	}
	for _, name := range asked {
		// No source for asynq's memory estimate: that chart stays empty (README).
		if !recorded[name] && name != "asynq_queue_memory_usage_approx_bytes" {
			t.Errorf("asynqmon charts %s, which no recording rule makes", name)
		}
	}

	// A notification for the worker to send: refused once (502), then taken.
	client := asynq.NewClientFromRedisClient(r.Client)
	if _, err := client.Enqueue(task.NewAlertNotifyTask([]byte(`{"status":"firing","alerts":[]}`))); err != nil {
		t.Fatal(err)
	}

	worker := startProc(t, bin, append(env, "MONITOR_METRICS_ADDR="+workerAddr), "worker")
	worker.waitStarted(t)
	sched := startProc(t, bin, append(env, "MONITOR_METRICS_ADDR="+schedAddr), "scheduler")
	sched.waitStarted(t)
	var stored int64
	testenv.WaitFor(t, 30*time.Second, "every report in tb_status", func() bool {
		return db.DB.Model(&mmodel.Status{}).Where("sn LIKE 'OBS%'").Count(&stored).Error == nil && stored == sent
	})
	testenv.WaitFor(t, 30*time.Second, "the notification sent after one refusal", func() bool { return hookCalls.Load() >= 2 })

	// The worker's collectors read afresh at their first scrape. A batch's rows are visible
	// at its COMMIT, a moment before the worker counts it, so wait for the counts too.
	var w scrape
	testenv.WaitFor(t, 20*time.Second, "the worker's counters and a periodic tick", func() bool {
		w = getMetrics(t, "http://"+workerAddr+"/metrics")
		return w.samples[`monitor_notifications_total{result="sent"}`] == 1 &&
			w.samples[`monitor_periodic_last_tick_timestamp_seconds{type="job:sweep"}`] > 0 &&
			w.samples["monitor_batch_reports_sum"] >= sent
	})
	batches := w.value(t, "monitor_batch_reports_count")
	if batches < 1 || w.value(t, "monitor_batch_reports_sum") != sent {
		t.Fatalf("batches %v holding %v reports, want %d reports", batches, w.samples["monitor_batch_reports_sum"], sent)
	}
	for k, want := range map[string]float64{
		"monitor_reports_stored_total":                             sent,
		"monitor_reports_duplicate_total":                          0,
		"monitor_batch_items_bad_total":                            0,
		"monitor_ingest_lag_seconds_count":                         batches,
		"monitor_batch_write_seconds_count":                        batches,
		`monitor_notifications_total{result="sent"}`:               1,
		`monitor_notifications_total{result="failed"}`:             1,
		`monitor_notifications_total{result="archived"}`:           0,
		`monitor_devices{state="online",tenant="0"}`:               devices,
		`monitor_devices{state="offline",tenant="0"}`:              0,
		`monitor_alerts_firing{kind="device_offline"}`:             1,
		`monitor_alerts_firing{kind="intake_down"}`:                0,
		`monitor_commands{state="pending"}`:                        1,
		`monitor_commands{state="done"}`:                           0,
		`monitor_queue_size{queue="ingest",state="aggregating"}`:   0,
		`monitor_queue_size{queue="ingest",state="pending"}`:       0,
		`monitor_queue_size{queue="ingest",state="archived"}`:      0,
		`monitor_queue_processed_total{queue="ingest"}`:            sent, // a task a report: they were sent one at a time
		`monitor_queue_failed_total{queue="ingest"}`:               0,
		`monitor_queue_processed_total{queue="notify"}`:            2,
		`monitor_queue_failed_total{queue="notify"}`:               1,
		`monitor_queue_size{queue="notify",state="archived"}`:      0,
		`monitor_queue_paused{queue="ingest"}`:                     0,
		`monitor_periodic_period_seconds{type="job:sweep"}`:        1,
		`monitor_periodic_period_seconds{type="job:command_sync"}`: 60,
		`monitor_periodic_period_seconds{type="job:retention"}`:    86400,
		"monitor_queue_read_up":                                    1,
		"monitor_fleet_read_up":                                    1,
	} {
		if got := w.value(t, k); got != want {
			t.Errorf("worker's %s = %v, want %v", k, got, want)
		}
	}
	if used := w.value(t, "monitor_redis_used_memory_bytes"); used <= 0 {
		t.Errorf("redis used memory %v", used)
	}
	if tick := w.value(t, `monitor_periodic_last_tick_timestamp_seconds{type="job:sweep"}`); time.Since(time.Unix(int64(tick), 0)) > time.Minute {
		t.Errorf("the sweep's last tick %v is not recent", tick)
	}
	s := getMetrics(t, "http://"+schedAddr+"/metrics")
	if !s.names["monitor_queue_size"] || !s.names["monitor_periodic_last_tick_timestamp_seconds"] || s.names["monitor_devices"] {
		t.Errorf("the scheduler (Redis only) should serve the queue metrics and not the fleet's: %v", s.names)
	}

	// Logs: JSON lines, the refused request's naming its id, the failed attempt its task.
	lines := jsonLines(t, api.err.String())
	if !hasLine(lines, map[string]string{"msg": "report refused: the device belongs to another tenant", "request_id": requestID}) {
		t.Errorf("no JSON line names request %s:\n%s", requestID, api.err.String())
	}
	wlines := jsonLines(t, worker.err.String())
	var taskID string
	for _, l := range wlines {
		if l["msg"] == "task failed" && l["type"] == task.TypeAlertNotify {
			taskID, _ = l["task_id"].(string)
		}
	}
	if taskID == "" {
		t.Errorf("the notification's failure is not logged with its task id:\n%s", worker.err.String())
	}
	exported := map[string]bool{}
	for _, sc := range []scrape{paused, w, s} {
		for n := range sc.names {
			exported[n] = true
		}
	}
	checkDashboardsAndRules(t, exported)
}

// jsonLines parses every line of out as a JSON object; a line that is not one fails t.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "operator token") || !strings.HasPrefix(sc.Text(), "{") {
			continue // stdout's banner shares the buffer
		}
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		lines = append(lines, l)
	}
	return lines
}

func hasLine(lines []map[string]any, want map[string]string) bool {
	for _, l := range lines {
		ok := true
		for k, v := range want {
			if l[k] != v {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// metricName matches the metric names in a PromQL expression: monitor's, and the Go and
// process collectors' (the words PromQL itself uses never start so).
var metricName = regexp.MustCompile(`\b(?:monitor|go|process|promhttp)_[a-z0-9_]+\b`)

// checkDashboardsAndRules parses the Grafana dashboards and Prometheus rule files under
// docker/ and checks that every metric their queries name is one of exported, or a
// series a recording rule defines from them.
func checkDashboardsAndRules(t *testing.T, exported map[string]bool) {
	t.Helper()
	known := func(name string) bool {
		for _, suffix := range []string{"", "_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] {
				return true
			}
		}
		return false
	}
	for _, q := range dashboardQueries(t) {
		names := metricName.FindAllString(q.expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: query %q names no monitor metric", q.where, q.expr)
		}
		for _, n := range names {
			if !known(n) {
				t.Errorf("%s: query %q names %s, which no role's /metrics exports", q.where, q.expr, n)
			}
		}
	}
	for _, q := range ruleQueries(t) {
		for _, n := range metricName.FindAllString(q.expr, -1) {
			if !known(n) {
				t.Errorf("%s: rule %q names %s, which no role's /metrics exports", q.where, q.expr, n)
			}
		}
	}
}

// query is one PromQL expression of a dashboard or rule file, and where it is.
type query struct{ where, expr string }

// dashboardQueries returns the query of every panel target of the Grafana dashboards.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "docker", "grafana", "dashboards", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	var out []query
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Title   string
				Targets []struct{ Expr string }
			}
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				out = append(out, query{where: filepath.Base(path) + ": " + p.Title, expr: tg.Expr})
			}
		}
	}
	return out
}

// ruleQueries returns the expression of every recording and alert rule.
func ruleQueries(t *testing.T) []query {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "docker", "prometheus", "rules", "*.yml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	var out []query
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Groups []struct {
				Rules []struct{ Record, Alert, Expr string }
			}
		}
		if err := yaml.Unmarshal(data, &f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				out = append(out, query{where: filepath.Base(path) + ": " + r.Record + r.Alert, expr: r.Expr})
			}
		}
	}
	return out
}
