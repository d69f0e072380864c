package app

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"monitor/internal/testenv"
)

// TestEachRoleServesItsOwnMetrics is issue 8 item 18d: every metric was registered on
// Prometheus's default registry, so a worker's /metrics showed the API's counters stuck
// at 0 (and the API's the workers'). Each role now shows the metrics of what it runs,
// and the Go and process collectors.
func TestEachRoleServesItsOwnMetrics(t *testing.T) {
	bin := testenv.MonitorBinary(t)
	r := testenv.NewRedis(t)
	db := testenv.NewDB(t)
	const (
		apiMetric    = "monitor_reports_accepted_total"
		workerMetric = "monitor_reports_stored_total"
	)
	for _, tc := range []struct {
		role       string
		want, not  []string
		needsMySQL bool
	}{
		{"api", []string{apiMetric}, []string{workerMetric}, true},
		{"worker", []string{workerMetric, "monitor_ingest_lag_seconds"}, []string{apiMetric}, true},
		{"scheduler", nil, []string{apiMetric, workerMetric}, false},
		{"all", []string{apiMetric, workerMetric}, nil, false},
	} {
		t.Run(tc.role, func(t *testing.T) {
			if db.DSN == "" && tc.needsMySQL {
				testenv.Missing(t, "the %s role needs a real MySQL", tc.role)
			}
			addr, metricsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
			p := startProc(t, bin, []string{
				"MONITOR_HTTP_ADDR=" + addr,
				"MONITOR_REDIS_ADDR=" + r.Addr, fmt.Sprintf("MONITOR_REDIS_DB=%d", r.DB),
				"MONITOR_MYSQL_DSN=" + db.DSN,
				"MONITOR_OPERATOR_TOKEN=" + strings.Repeat("t", 24),
				"MONITOR_METRICS_ADDR=" + metricsAddr,
			}, tc.role)
			p.waitStarted(t)
			url := "http://" + metricsAddr + "/metrics"
			if tc.role == "api" || tc.role == "all" {
				url = "http://" + addr + "/metrics" // the API serves them itself
			}
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
			}
			names := map[string]bool{}
			for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(string(body), -1) {
				names[m[1]] = true
			}
			for _, want := range append([]string{"go_goroutines", "process_cpu_seconds_total"}, tc.want...) {
				if !names[want] {
					t.Errorf("%s /metrics lacks %s", tc.role, want)
				}
			}
			for _, not := range tc.not {
				if names[not] {
					t.Errorf("%s /metrics shows %s", tc.role, not)
				}
			}
			if t.Failed() {
				t.Logf("metrics: %v", names)
			}
			p.signal(t, syscall.SIGTERM)
			if err := p.wait(t, 30*time.Second, "after SIGTERM"); err != nil {
				t.Errorf("exit: %v\n%s", err, p.out.String())
			}
		})
	}
}

// TestOnlyTheAPIRegistersOnTheDefaultRegistry guards roleMetrics: a metric that a
// package other than api registers on the default registry (promauto) is served only
// by the processes that run the API, so a worker's or scheduler's would be lost from
// the /metrics of the process that counts it. Such a package exports its collectors
// (like worker.Collectors) and roleMetrics registers them for the roles that run it.
func TestOnlyTheAPIRegistersOnTheDefaultRegistry(t *testing.T) {
	root := filepath.Join("..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name != ".." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "api"+string(filepath.Separator)) || rel == filepath.Join("app", "metrics.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, use := range []string{"promauto.", "prometheus.MustRegister(", "prometheus.Register(", "prometheus.DefaultRegisterer"} {
			if strings.Contains(string(src), use) {
				t.Errorf("%s uses %s: export the collectors and register them in app's roleMetrics instead", rel, use)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
