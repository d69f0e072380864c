package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// MonitorBinary builds the real monitor binary once per test binary and returns its
// path; -short skips the calling test, except under MONITOR_TEST_REAL=1, which runs
// everything. TestMain calls RemoveMonitorBinary after the tests.
func MonitorBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() && !Real() {
		t.Skip("builds the binary")
	}
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "monitor-bin-"); binErr != nil {
			return
		}
		build := exec.Command("go", "build", "-o", filepath.Join(binDir, "monitor"), "monitor")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("%w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v", binErr)
	}
	return filepath.Join(binDir, "monitor")
}

// RemoveMonitorBinary removes what MonitorBinary built; TestMain calls it.
func RemoveMonitorBinary() {
	if binDir != "" {
		_ = os.RemoveAll(binDir) // a leftover temporary folder is not a test failure
	}
}

// SyncBuffer is a bytes.Buffer safe for the concurrent writes of a running process and
// a test reading them.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
