package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"monitor/internal/testenv"
	"monitor/model"
)

// TestShutdownWithASlowLogUpload is issue 8 item 17, on the real binary: a slow log
// upload in flight held the first SIGTERM's shutdown for the whole
// MONITOR_SHUTDOWN_TIMEOUT, a second SIGTERM was ignored, the process exited 1 and the
// partial temporary file stayed in MONITOR_LOG_DIR. Now the shutdown cuts the upload and
// removes its file at once, and a second signal ends a shutdown still waiting (here for
// a slow status report, which it drains by design) at once, killed by that signal.
func TestShutdownWithASlowLogUpload(t *testing.T) {
	bin := testenv.MonitorBinary(t)
	r := testenv.NewRedis(t)
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "the api role needs a real MySQL")
	}
	start := func(t *testing.T) (p *proc, addr, logDir string) {
		addr, logDir = testenv.FreeAddr(t), t.TempDir()
		p = startProc(t, bin, []string{
			"MONITOR_HTTP_ADDR=" + addr,
			"MONITOR_REDIS_ADDR=" + r.Addr, fmt.Sprintf("MONITOR_REDIS_DB=%d", r.DB),
			"MONITOR_MYSQL_DSN=" + db.DSN,
			"MONITOR_OPERATOR_TOKEN=" + strings.Repeat("t", 24),
			"MONITOR_LOG_DIR=" + logDir,
			"MONITOR_SHUTDOWN_TIMEOUT=20s",
		}, "api")
		p.waitStarted(t)
		return p, addr, logDir
	}

	t.Run("first signal cuts the upload", func(t *testing.T) {
		p, addr, logDir := start(t)
		slowUpload(t, addr, "U1", logDir)
		p.signal(t, syscall.SIGTERM)
		if err := p.wait(t, 5*time.Second, "after SIGTERM with a log upload in flight"); err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.out.String())
		}
		noUploadFiles(t, logDir)
	})

	t.Run("second signal ends the shutdown", func(t *testing.T) {
		p, addr, logDir := start(t)
		slowUpload(t, addr, "U2", logDir)
		// A status report whose body never finishes: the shutdown waits for it.
		report := dial(t, addr)
		fmt.Fprintf(report, "POST /open/statusUpload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"sn\":")
		time.Sleep(200 * time.Millisecond)
		p.signal(t, syscall.SIGTERM)
		testenv.WaitFor(t, 5*time.Second, "the cut upload's file to go", func() bool { return len(uploadFiles(t, logDir)) == 0 })
		select {
		case err := <-p.done:
			t.Fatalf("exited (%v) with a status report in flight; the test needs a shutdown still waiting", err)
		case <-time.After(time.Second):
		}
		sent := time.Now()
		p.signal(t, syscall.SIGTERM)
		err := p.wait(t, 3*time.Second, "after a second SIGTERM")
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("exit after a second SIGTERM: %v, want killed by SIGTERM", err)
		}
		if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Fatalf("exit after a second SIGTERM: %v, want killed by SIGTERM", err)
		}
		t.Logf("exited %v after the second SIGTERM: %v", time.Since(sent).Round(time.Millisecond), err)
		noUploadFiles(t, logDir)
	})
}

// slowUpload reports as sn, opens a log upload command for it, and starts its upload:
// the headers and half the body, then nothing. It returns once the upload's temporary
// file is in logDir.
func slowUpload(t *testing.T, addr, sn, logDir string) {
	t.Helper()
	base := "http://" + addr
	resp, err := http.Post(base+"/open/statusUpload", "application/json",
		strings.NewReader(`{"sn":"`+sn+`","ndate":"2026-03-01","ntime":"08:00:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("report: %d", resp.StatusCode)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/devices/"+sn+"/commands", strings.NewReader(`{"type":"upload_logs"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("t", 24))
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var cmd struct {
		ID uint64 `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&cmd)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || cmd.ID == 0 {
		t.Fatalf("create command: %d %v %+v", resp.StatusCode, err, cmd)
	}
	conn := dial(t, addr)
	fmt.Fprintf(conn, "POST /open/logUpload?sn=%s&cmdId=%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s",
		sn, cmd.ID, 1<<20, strings.Repeat("x", 512<<10))
	testenv.WaitFor(t, 5*time.Second, "the upload's temporary file", func() bool { return len(uploadFiles(t, logDir)) == 1 })
}

// dial opens a connection to addr that closes with the test.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// uploadFiles lists the temporary upload files in dir.
func uploadFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, model.LogTempPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func noUploadFiles(t *testing.T, dir string) {
	t.Helper()
	if files := uploadFiles(t, dir); len(files) != 0 {
		t.Fatalf("temporary upload files left: %v", files)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("log dir holds %d entries after a cut upload", len(entries))
	}
}
