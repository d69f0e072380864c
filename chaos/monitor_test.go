package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"monitor/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveMonitorBinary()
	if code == 0 {
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// operatorToken is the operator secret of every process the suite starts.
const operatorToken = "chaos-operator-token-0123456789"

// stack is one scenario's servers and the environment its monitor processes share.
type stack struct {
	t     *testing.T
	bin   string
	redis *redisServer
	maria *mariaServer
	env   []string
}

// newStack starts a Redis and a MariaDB of the scenario's own and migrates the schema.
// env adds to (or overrides) the processes' configuration.
func newStack(t *testing.T, rc redisConfig, env ...string) *stack {
	t.Helper()
	bin := testenv.MonitorBinary(t)
	if rc.AppendFsync == "" {
		rc.AppendFsync = "everysec"
	}
	s := &stack{t: t, bin: bin, redis: startRedis(t, rc), maria: startMariaDB(t)}
	s.env = append([]string{
		"MONITOR_REDIS_ADDR=" + s.redis.addr,
		"MONITOR_MYSQL_DSN=" + s.maria.DSN,
		"MONITOR_OPERATOR_TOKEN=" + operatorToken,
		"MONITOR_LOG_LEVEL=info", "MONITOR_LOG_FORMAT=text", // the checks read text log lines
		// Well above anything a scenario sends per device.
		"MONITOR_DEVICE_RATE=1000", "MONITOR_DEVICE_BURST=1000",
		"MONITOR_SHUTDOWN_TIMEOUT=10s",
	}, env...)
	s.run("migrate")
	return s
}

// run runs a one-shot command of the binary (migrate) and fails the test if it fails.
func (s *stack) run(args ...string) {
	s.t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.t.TempDir()
	cmd.Env = s.environ(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("monitor %v: %v\n%s", args, err, out)
	}
}

// environ is the test's environment without any MONITOR_ configuration of its own,
// then the stack's, then extra.
func (s *stack) environ(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MONITOR_") {
			env = append(env, kv)
		}
	}
	return append(append(env, s.env...), extra...)
}

// proc is a running monitor process.
type proc struct {
	role string
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	done chan struct{}
	err  error // Wait's result, once done is closed
	// url is the API's base URL (api role) or the metrics listener's (worker role).
	url string
}

// start runs `monitor role` with the stack's configuration plus extra, and waits until
// it logged that it started and its HTTP listener answers.
func (s *stack) start(role string, extra ...string) *proc {
	s.t.Helper()
	addr := testenv.FreeAddr(s.t)
	for _, kv := range extra {
		if a, ok := strings.CutPrefix(kv, "MONITOR_HTTP_ADDR="); ok && role == "api" {
			addr = a // a scenario that restarts the API on the address its terminals use
		}
	}
	listen := "MONITOR_HTTP_ADDR=" + addr
	if role != "api" {
		listen = "MONITOR_METRICS_ADDR=" + addr
	}
	cmd := exec.Command(s.bin, role)
	cmd.Dir = s.t.TempDir()
	cmd.Env = s.environ(append([]string{listen, "MONITOR_DATA_DIR=" + cmd.Dir, "MONITOR_LOG_DIR=" + filepath.Join(cmd.Dir, "logs")}, extra...))
	p := &proc{role: role, cmd: cmd, out: &testenv.SyncBuffer{}, done: make(chan struct{}), url: "http://" + addr}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.t.Cleanup(func() {
		p.kill()
		if s.t.Failed() {
			s.t.Logf("monitor %s output:\n%s", role, tail(p.out, 6000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.out.String(), "msg=started") || !answers(p.url+"/healthz") {
		select {
		case <-p.done:
			s.t.Fatalf("monitor %s exited at start: %v\n%s", role, p.err, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("monitor %s did not start:\n%s", role, p.out.String())
		}
	}
	return p
}

func answers(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill sends SIGKILL, unless the process ended already, and waits for it.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill() // it may have exited in between
	<-p.done
}

// terminate sends SIGTERM and returns how long the process took to exit and its exit
// error; it gives up after limit.
func (p *proc) terminate(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(limit):
		p.kill()
		return time.Since(start), errors.New("still running after " + limit.String())
	}
}

// tail returns the end of a process's output.
func tail(b *testenv.SyncBuffer, n int) string {
	s := b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// waitUntil polls cond every 100 ms until it holds or limit passes, and says whether it held.
func waitUntil(ctx context.Context, limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}
