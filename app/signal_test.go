package app

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"monitor/internal/testenv"
)

// TestSIGTERMStopsEveryRole builds the real binary and checks that each long-running
// role exits cleanly on SIGTERM: asynq's Run would install its own signal handling, so a
// process mixing it with an HTTP server could ignore the signal.
func TestSIGTERMStopsEveryRole(t *testing.T) {
	bin := testenv.MonitorBinary(t)
	r := testenv.NewRedis(t)
	db := testenv.NewDB(t)
	for _, role := range []string{"all", "api", "worker", "scheduler"} {
		t.Run(role, func(t *testing.T) {
			if db.DSN == "" && role != "all" {
				testenv.Missing(t, "separate roles need a real MySQL")
			}
			addr, metricsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
			cmd := exec.Command(bin, role)
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(),
				"MONITOR_HTTP_ADDR="+addr,
				"MONITOR_REDIS_ADDR="+r.Addr, fmt.Sprintf("MONITOR_REDIS_DB=%d", r.DB),
				"MONITOR_MYSQL_DSN="+db.DSN,
				"MONITOR_OPERATOR_TOKEN="+strings.Repeat("t", 24),
				"MONITOR_DATA_DIR="+cmd.Dir,
				"MONITOR_METRICS_ADDR="+metricsAddr)
			out := &testenv.SyncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			deadline := time.After(20 * time.Second)
			for !strings.Contains(out.String(), `"msg":"started"`) {
				select {
				case err := <-done:
					t.Fatalf("%s exited before starting: %v\n%s", role, err, out.String())
				case <-deadline:
					t.Fatalf("%s did not start:\n%s", role, out.String())
				case <-time.After(50 * time.Millisecond):
				}
			}
			// Roles without the API serve their metrics on MONITOR_METRICS_ADDR: the
			// Go collector's, and the worker the workers' (TestEachRoleServesItsOwnMetrics).
			if role == "worker" || role == "scheduler" {
				want := "go_goroutines"
				if role == "worker" {
					want = "monitor_reports_stored_total"
				}
				resp, err := http.Get("http://" + metricsAddr + "/metrics")
				if err != nil {
					t.Fatalf("%s metrics: %v", role, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
					t.Fatalf("%s /metrics = %d %v: %.200s", role, resp.StatusCode, err, body)
				}
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s exited with %v after SIGTERM\n%s", role, err, out.String())
				}
			case <-time.After(30 * time.Second):
				if err := cmd.Process.Kill(); err != nil {
					t.Error(err)
				}
				<-done
				t.Fatalf("%s ignored SIGTERM\n%s", role, out.String())
			}
		})
	}
}
