package app

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"monitor/internal/testenv"
)

// proc is a monitor process a test started.
type proc struct {
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer // stdout and stderr
	err  *testenv.SyncBuffer // stderr alone
	done chan error
}

// startProc starts the binary with args and env added to the test's environment, with
// its working directory in a temporary directory, and kills it when the test ends.
func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(os.Environ(), "MONITOR_DATA_DIR="+cmd.Dir), env...)
	p := &proc{cmd: cmd, out: &testenv.SyncBuffer{}, err: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout = p.out
	cmd.Stderr = teeWriter{p.out, p.err}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitStarted waits until the process logged that it started, in JSON or text.
func (p *proc) waitStarted(t *testing.T) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for out := p.out.String(); !strings.Contains(out, `"msg":"started"`) && !strings.Contains(out, "msg=started"); out = p.out.String() {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("exited before starting: %v\n%s", err, p.out.String())
		case <-deadline:
			t.Fatalf("did not start:\n%s", p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to limit for the process to exit and returns Wait's error; it fails
// the test when the process is still running then.
func (p *proc) wait(t *testing.T, limit time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(limit):
		t.Fatalf("%s: still running after %v\n%s", what, limit, p.out.String())
		return nil
	}
}

// teeWriter writes to both writers.
type teeWriter struct{ a, b *testenv.SyncBuffer }

func (w teeWriter) Write(p []byte) (int, error) {
	if _, err := w.a.Write(p); err != nil {
		return 0, err
	}
	return w.b.Write(p)
}
