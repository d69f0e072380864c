package app

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"monitor/internal/testenv"
)

// TestRedisOutageLogsThroughSlog is issue 8 item 18c: with Redis gone, go-redis printed
// its own raw lines ("redis: 2026/11/27 ... pool.go:...") to stderr beside the process's
// slog lines. Every line a role writes to stderr is now slog's, except main's one
// closing "monitor: <error>" line.
func TestRedisOutageLogsThroughSlog(t *testing.T) {
	bin := testenv.MonitorBinary(t)
	r := testenv.NewRedis(t)
	db := testenv.NewDB(t)
	for _, role := range []string{"scheduler", "worker"} {
		t.Run(role, func(t *testing.T) {
			if db.DSN == "" && role == "worker" {
				testenv.Missing(t, "the %s role needs a real MySQL", role)
			}
			proxy := newTCPProxy(t, r.Addr)
			p := startProc(t, bin, []string{
				"MONITOR_HTTP_ADDR=" + testenv.FreeAddr(t),
				"MONITOR_REDIS_ADDR=" + proxy.addr(), fmt.Sprintf("MONITOR_REDIS_DB=%d", r.DB),
				"MONITOR_MYSQL_DSN=" + db.DSN,
				"MONITOR_OPERATOR_TOKEN=" + strings.Repeat("t", 24),
				"MONITOR_SHUTDOWN_TIMEOUT=3s",
				"MONITOR_LOG_FORMAT=text", // the checks below read slog's text lines
			}, role)
			p.waitStarted(t)
			proxy.kill() // Redis dies: every connection drops and no new one is taken
			time.Sleep(4 * time.Second)
			p.signal(t, syscall.SIGTERM)
			_ = p.wait(t, 20*time.Second, "after SIGTERM with Redis gone")
			stderr := p.err.String()
			for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
				if !strings.HasPrefix(line, "time=") && !strings.HasPrefix(line, "monitor: ") {
					t.Errorf("stderr line not from slog: %q", line)
				}
			}
			t.Logf("%d go-redis lines through slog", strings.Count(stderr, "component=redis"))
			if !strings.Contains(stderr, "component=redis") {
				t.Errorf("no go-redis line in stderr; the test saw no outage")
			}
			if t.Failed() {
				t.Logf("stderr:\n%s", stderr)
			}
		})
	}
}

// tcpProxy forwards connections to a Redis until it is killed.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	t.Cleanup(p.kill)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			if p.dead {
				p.mu.Unlock()
				_ = c.Close()
				_ = up.Close()
				return
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

// kill closes the listener and every connection; the port then refuses connections.
func (p *tcpProxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = true
	_ = p.ln.Close()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
