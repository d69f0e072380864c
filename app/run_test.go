package app

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"go.uber.org/goleak"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"monitor/backend"
	"monitor/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(cleanupM{m}) }

// cleanupM runs the tests, then removes the binary that testenv.MonitorBinary built.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	defer testenv.RemoveMonitorBinary()
	return c.m.Run()
}

// startAll runs `monitor all` in embedded mode in-process and returns its address, a
// stop function that returns run's error, and its output.
func startAll(t *testing.T, dir string) (addr string, stop func() error, stdout *testenv.SyncBuffer) {
	t.Helper()
	addr = testenv.FreeAddr(t)
	env := []string{"MONITOR_HTTP_ADDR=" + addr, "MONITOR_DATA_DIR=" + dir, "MONITOR_LOG_DIR=" + filepath.Join(dir, "logs"),
		"MONITOR_SHUTDOWN_TIMEOUT=20s"}
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"all"}, env, stdout, stderr) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("monitor all exited: %v\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("monitor all did not come up: %s", stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
			t.Logf("stderr:\n%s", stderr)
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return addr, stop, stdout
}

func postReport(t *testing.T, addr, body string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/open/statusUpload", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
}

func countRows(t *testing.T, dir string) int64 {
	t.Helper()
	db, err := gorm.Open(sqlite.Open(backend.SQLiteDSN(filepath.Join(dir, "monitor.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	var n int64
	if err := db.Table("tb_status").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEmbeddedAllIngestsTheFixture(t *testing.T) {
	dir := t.TempDir()
	addr, stop, stdout := startAll(t, dir)
	fixture, err := os.ReadFile("../fixtures/status.json")
	if err != nil {
		t.Fatal(err)
	}
	postReport(t, addr, string(fixture))
	deadline := time.Now().Add(20 * time.Second)
	for countRows(t, dir) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the fixture never reached tb_status")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []string{"operator token", "/open/statusUpload", "/monitoring/", "/metrics"} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up output lacks %q:\n%s", want, out)
		}
	}
}

// TestEmbeddedShutdownWritesWhatWasAcknowledged stops the process right after the
// reports were acknowledged: the embedded Redis dies with it, so shutdown must first
// write every acknowledged report.
func TestEmbeddedShutdownWritesWhatWasAcknowledged(t *testing.T) {
	dir := t.TempDir()
	addr, stop, _ := startAll(t, dir)
	const n = 40
	for i := range n {
		postReport(t, addr, fmt.Sprintf(`{"sn":"SD%03d","ndate":"2021-08-07","ntime":"18:30:30"}`, i))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, dir); got != n {
		t.Fatalf("tb_status has %d rows after shutdown, want %d", got, n)
	}
}

func TestRunRefusesBadConfigNamingTheKey(t *testing.T) {
	var stderr bytes.Buffer
	err := Run(context.Background(), []string{"all"}, []string{"MONITOR_DEVICE_RATE=lots"}, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "MONITOR_DEVICE_RATE") || strings.Count(err.Error(), "\n") > 0 {
		t.Fatalf("err = %v", err)
	}
	err = Run(context.Background(), []string{"api"}, nil, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "MONITOR_REDIS_ADDR") {
		t.Fatalf("api without Redis: err = %v", err)
	}
	if err := Run(context.Background(), []string{"bogus"}, nil, &bytes.Buffer{}, &stderr); err == nil {
		t.Fatal("unknown command accepted")
	}
}

// TestStartupWarnsAboutUnknownVariables: a typo of MONITOR_REDIS_ADDR would leave
// the process quietly on its embedded Redis; start-up names it instead.
func TestStartupWarnsAboutUnknownVariables(t *testing.T) {
	var stderr testenv.SyncBuffer
	typo := strings.ToUpper("monitor_redis_adr") // lower case, so the config package's scan of the repository skips it
	env := []string{"MONITOR_DATA_DIR=" + t.TempDir(), typo + "=127.0.0.1:6379", "MONITOR_TEST_REAL=1"}
	if err := Run(context.Background(), []string{"migrate"}, env, &bytes.Buffer{}, &stderr); err != nil {
		t.Fatal(err)
	}
	out := stderr.String()
	if !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, typo+" is not a monitor setting") ||
		!strings.Contains(out, "did you mean MONITOR_REDIS_ADDR?") {
		t.Fatalf("start-up output does not warn about %s:\n%s", typo, out)
	}
	if strings.Contains(out, "MONITOR_TEST_REAL") {
		t.Fatalf("start-up warns about the test switch MONITOR_TEST_REAL:\n%s", out)
	}
}

// TestCommandHelpExitsZero: `monitor all -h` asks for the command's usage, which is
// printed on stdout, and Run returns nil so the process exits 0.
func TestCommandHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"all", "-h"}, {"api", "--help"}, {"worker", "-h"}, {"scheduler", "-help"}, {"migrate", "-h"}} {
		var stdout, stderr bytes.Buffer
		if err := Run(context.Background(), args, nil, &stdout, &stderr); err != nil {
			t.Errorf("%v: err = %v, want nil", args, err)
		}
		if want := "usage: monitor " + args[0]; !strings.Contains(stdout.String(), want) || !strings.Contains(stdout.String(), "-f") {
			t.Errorf("%v: stdout = %q, want the command's usage", args, stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"all", "-x"}, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "-x") || !strings.Contains(stderr.String(), "usage: monitor all") {
		t.Errorf("a bad flag: err = %v, stderr = %q", err, stderr.String())
	}
}

// TestStrayArgumentIsRefused: `monitor all prod.yaml` (the -f forgotten) must not start
// on the defaults; the error names the argument and suggests -f when it looks like a file.
func TestStrayArgumentIsRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // were the argument ignored, an embedded start would write ./data here
	// Cancelled, so a build that ignores the argument returns at once instead of serving.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env := []string{"MONITOR_HTTP_ADDR=127.0.0.1:0"}
	plain := filepath.Join(dir, "monitor.conf")
	if err := os.WriteFile(plain, []byte("http_addr: :1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		arg  string
		hint bool
	}{
		{[]string{"all", "prod.yaml"}, "prod.yaml", true},
		{[]string{"api", "-f", "a.yaml", "b.yml"}, "b.yml", true},
		{[]string{"worker", plain}, plain, true},
		{[]string{"scheduler", "now"}, "now", false},
		{[]string{"migrate", "x", "y"}, "x", false},
	} {
		err := Run(ctx, tc.args, env, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.arg)) {
			t.Errorf("%v: err = %v, want one naming %q", tc.args, err, tc.arg)
			continue
		}
		if got := strings.Contains(err.Error(), "-f "+tc.arg); got != tc.hint {
			t.Errorf("%v: err = %v, suggests -f: %v, want %v", tc.args, err, got, tc.hint)
		}
	}
}
