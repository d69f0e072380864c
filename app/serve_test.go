package app

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"monitor/internal/testenv"
)

// TestDeadListenerIsAnError closes the API's listener under a running `monitor all`: the
// HTTP server stops on its own, and Run must shut everything down and return an error,
// so the process exits non-zero and its supervisor restarts it.
func TestDeadListenerIsAnError(t *testing.T) {
	var mu sync.Mutex
	var bound []net.Listener
	listen = func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		if err == nil {
			mu.Lock()
			bound = append(bound, ln)
			mu.Unlock()
		}
		return ln, err
	}
	t.Cleanup(func() { listen = net.Listen })

	dir := t.TempDir()
	addr := testenv.FreeAddr(t)
	env := []string{"MONITOR_HTTP_ADDR=" + addr, "MONITOR_DATA_DIR=" + dir, "MONITOR_LOG_DIR=" + filepath.Join(dir, "logs")}
	var stdout, stderr testenv.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), []string{"all"}, env, &stdout, &stderr) }()
	testenv.WaitFor(t, 20*time.Second, "monitor all to answer /healthz", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		return resp.Body.Close() == nil && resp.StatusCode == http.StatusOK
	})
	mu.Lock()
	if len(bound) != 1 {
		t.Fatalf("%d listeners bound, want the API's only", len(bound))
	}
	if err := bound[0].Close(); err != nil {
		t.Fatal(err)
	}
	mu.Unlock()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "http server") {
			t.Fatalf("Run returned %v after its listener died, want an error naming the http server\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Run is still running 30s after its listener died\n%s", stderr.String())
	}
}

// TestFailedListenStartsNothing takes the pprof port before `monitor all` starts: Run
// fails naming it, and leaves no worker, scheduler or backend running behind.
func TestFailedListenStartsNothing(t *testing.T) {
	before := goleak.IgnoreCurrent()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := taken.Close(); err != nil {
			t.Error(err)
		}
	}()
	dir := t.TempDir()
	env := []string{"MONITOR_HTTP_ADDR=" + testenv.FreeAddr(t), "MONITOR_DATA_DIR=" + dir,
		"MONITOR_LOG_DIR=" + filepath.Join(dir, "logs"), "MONITOR_PPROF_ADDR=" + taken.Addr().String()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	err = Run(ctx, []string{"all"}, env, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "pprof") {
		t.Fatalf("Run = %v, want an error naming the pprof listener", err)
	}
	goleak.VerifyNone(t, before)
}
