package docker

import (
	"cmp"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"monitor/internal/testenv"
)

// prometheusConfig is the part of prometheus.yml the checks read.
type prometheusConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName      string `yaml:"job_name"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// bindMounts returns the service's bind mounts, host path (relative to docker/) by target.
func bindMounts(s composeService) map[string]string {
	out := map[string]string{}
	for _, m := range s.Volumes {
		src, rest, ok := strings.Cut(m, ":")
		if !ok || !strings.HasPrefix(src, ".") {
			continue
		}
		target, _, _ := strings.Cut(rest, ":")
		out[target] = src
	}
	return out
}

// TestComposeMonitoring checks the prometheus and grafana services against the files
// they mount and the roles they watch: Prometheus scrapes each role by its service name
// (every replica) on the port the role serves /metrics on, loads the rules directory,
// and is where asynqmon and Grafana look for it.
func TestComposeMonitoring(t *testing.T) {
	var cf composeFile
	readYAML(t, "docker-compose.yml", &cf)
	prom, ok := cf.Services["prometheus"]
	if !ok || !strings.HasPrefix(prom.Image, "prom/prometheus:") {
		t.Fatalf("no prometheus service with a prom/prometheus image: %+v", prom)
	}
	graf, ok := cf.Services["grafana"]
	if !ok || !strings.HasPrefix(graf.Image, "grafana/grafana:") {
		t.Fatalf("no grafana service with a grafana/grafana image: %+v", graf)
	}
	for name, s := range map[string]composeService{"prometheus": prom, "grafana": graf} {
		for target, src := range bindMounts(s) {
			if _, err := os.Stat(src); err != nil {
				t.Errorf("%s mounts %s at %s: %v", name, src, target, err)
			}
		}
	}

	promMounts := bindMounts(prom)
	var pc prometheusConfig
	readYAML(t, promMounts["/etc/prometheus/prometheus.yml"], &pc)
	if !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("prometheus command %q does not load the mounted config", prom.Command)
	}
	if len(pc.RuleFiles) != 1 {
		t.Fatalf("rule_files %q, want the rules directory's glob", pc.RuleFiles)
	}
	rulesDir := promMounts[filepath.Dir(pc.RuleFiles[0])]
	rules, _ := filepath.Glob(filepath.Join(rulesDir, filepath.Base(pc.RuleFiles[0])))
	if rulesDir == "" || len(rules) < 2 {
		t.Errorf("rule_files %q matches %q in the mounted directory %q, want the alert and the asynqmon rules", pc.RuleFiles, rules, rulesDir)
	}

	// Each role is scraped by its service name, so every replica is, on its /metrics port.
	metricsPort := func(role string) string {
		env := cf.Services[role].Environment
		addr := env["MONITOR_METRICS_ADDR"]
		if role == "api" {
			addr = cmp.Or(env["MONITOR_HTTP_ADDR"], ":8888")
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s serves /metrics on %q: %v", role, addr, err)
		}
		return port
	}
	for _, role := range []string{"api", "worker", "scheduler"} {
		found := false
		for _, sc := range pc.ScrapeConfigs {
			for _, sd := range sc.DNSSDConfigs {
				if slices.Equal(sd.Names, []string{role}) && sd.Type == "A" {
					found = true
					if got := strconv.Itoa(sd.Port); got != metricsPort(role) {
						t.Errorf("job %s scrapes %s on port %s, but it serves /metrics on %s", sc.JobName, role, got, metricsPort(role))
					}
					if sc.JobName != role {
						t.Errorf("the job scraping %s is named %s; the rules name it by role", role, sc.JobName)
					}
				}
			}
		}
		if !found {
			t.Errorf("prometheus.yml does not scrape every %s replica (dns_sd_configs names [%s], type A)", role, role)
		}
	}

	// asynqmon (in the api) and Grafana reach Prometheus by its service name.
	promURL := cf.Services["api"].Environment["MONITOR_PROMETHEUS_URL"]
	if u, err := url.Parse(promURL); err != nil || u.Host != "prometheus:9090" {
		t.Errorf("api's MONITOR_PROMETHEUS_URL=%q, want http://prometheus:9090", promURL)
	}
	grafMounts := bindMounts(graf)
	var ds struct {
		Datasources []struct{ Type, URL, UID string } `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(grafMounts["/etc/grafana/provisioning"], "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana data sources %+v, want the prometheus service", ds.Datasources)
	}
	var provider struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(grafMounts["/etc/grafana/provisioning"], "dashboards", "monitor.yml"), &provider)
	if len(provider.Providers) != 1 || grafMounts[provider.Providers[0].Options.Path] == "" {
		t.Fatalf("grafana's dashboard provider %+v reads no mounted directory (%v)", provider.Providers, grafMounts)
	}
	dashboards, _ := filepath.Glob(filepath.Join(grafMounts[provider.Providers[0].Options.Path], "*.json"))
	if len(dashboards) == 0 {
		t.Fatal("no dashboard to provision")
	}
	for _, path := range dashboards {
		checkDashboard(t, path, ds.Datasources[0].UID)
	}
}

// checkDashboard checks a dashboard's structure: unique panel ids, and every panel
// querying the provisioned data source. app's TestMetricsAndLogsAfterARealIngest checks
// that each query names metrics the roles export.
func checkDashboard(t *testing.T, path, uid string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID, Title string
		Panels     []struct {
			ID         int
			Title      string
			Datasource struct{ UID string }
			Targets    []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: uid %q title %q with %d panels", path, d.UID, d.Title, len(d.Panels))
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d twice", path, p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != uid || len(p.Targets) == 0 {
			t.Errorf("%s: panel %q queries data source %q with %d targets", path, p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: panel %q has an empty query", path, p.Title)
			}
		}
	}
}

// TestPromtool runs promtool over prometheus.yml and the rule files: the rules' PromQL
// parses, and their templates too, and the alerts fire as prometheus/tests expects. Debian's prometheus package ships promtool (.ci/run
// installs it).
func TestPromtool(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		testenv.Missing(t, "promtool (Debian package prometheus) is not installed")
		return
	}
	rules, err := filepath.Glob("prometheus/rules/*.yml")
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	ruleTests, err := filepath.Glob("prometheus/tests/*.yml")
	if err != nil || len(ruleTests) == 0 {
		t.Fatalf("no rule tests: %v", err)
	}
	// Grafana's queries parse as PromQL too: promtool checks them as recording rules.
	dashboardRules := filepath.Join(t.TempDir(), "dashboard.yml")
	writeDashboardRules(t, dashboardRules)
	for _, args := range [][]string{
		append([]string{"check", "rules", dashboardRules}, rules...),
		append([]string{"test", "rules"}, ruleTests...),
		{"check", "config", "--syntax-only", "prometheus/prometheus.yml"},
	} {
		out, err := exec.Command("promtool", args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// writeDashboardRules writes every query of the dashboards as a recording rule to path.
func writeDashboardRules(t *testing.T, path string) {
	t.Helper()
	paths, err := filepath.Glob("grafana/dashboards/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rs []rule
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct{ Targets []struct{ Expr string } }
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, panel := range d.Panels {
			for _, tg := range panel.Targets {
				rs = append(rs, rule{Record: "dashboard:query_" + strconv.Itoa(len(rs)), Expr: tg.Expr})
			}
		}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []map[string]any{{"name": "dashboard", "rules": rs}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}
