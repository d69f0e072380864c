package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the database/sql driver of the checks
	"github.com/redis/go-redis/v9"

	"monitor/internal/testenv"
)

// server is a redis-server or mariadbd this suite started: it can be killed and started
// again on the same port and data folder.
type server struct {
	name string
	port int
	dir  string
	args []string
	bin  string
	ping func(ctx context.Context) error
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(testenv.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// start starts the server process and waits until it answers.
func (s *server) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, s.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s.log = logf
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C of the test run does not reach it before cleanup.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.name, err)
	}
	done := make(chan struct{})
	s.done = done
	cmd := s.cmd
	go func() {
		_ = cmd.Wait() // its exit status is the fault the test injected
		close(done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.ping(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited at start: %v\n%s", s.name, err, s.tail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer: %v\n%s", s.name, err, s.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail returns the end of the server's log.
func (s *server) tail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, s.name+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill(t *testing.T) { s.stop(t, syscall.SIGKILL) }

// stop sends sig and waits up to a minute for the process to exit.
func (s *server) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
	default:
		if err := s.cmd.Process.Signal(sig); err != nil {
			t.Fatalf("signal %s: %v", s.name, err)
		}
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			_ = s.cmd.Process.Kill()
			<-s.done
			t.Errorf("%s ignored %v for a minute", s.name, sig)
		}
	}
	if err := s.log.Close(); err != nil {
		t.Error(err)
	}
	s.cmd = nil
}

// redisServer is a redis-server of the suite's own.
type redisServer struct {
	server
	addr string
}

// redisConfig is how a scenario's Redis persists and limits itself.
type redisConfig struct {
	// AppendFsync is "everysec" or "always"; AOF is always on.
	AppendFsync string
	// MaxMemory, when set, is maxmemory in bytes, with the noeviction policy.
	MaxMemory int64
}

// startRedis starts a redis-server with AOF in a temporary folder on a free port.
func startRedis(t *testing.T, c redisConfig) *redisServer {
	t.Helper()
	bin := testenv.LookBinary(t, "redis-server")
	port := freePort(t)
	r := &redisServer{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", ".", "--save", "",
		"--appendonly", "yes", "--appendfsync", c.AppendFsync, "--daemonize", "no", "--protected-mode", "no"}
	if c.MaxMemory > 0 {
		args = append(args, "--maxmemory", strconv.FormatInt(c.MaxMemory, 10), "--maxmemory-policy", "noeviction")
	}
	client := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	r.server = server{name: "redis", port: port, dir: t.TempDir(), args: args, bin: bin,
		ping: func(ctx context.Context) error { return client.Ping(ctx).Err() }}
	r.start(t)
	t.Cleanup(func() { r.kill(t) })
	return r
}

// mariaServer is a mariadbd of the suite's own, with one database "monitor".
type mariaServer struct {
	server
	// DSN is the go-sql-driver DSN of the database monitor uses.
	DSN string
}

// startMariaDB installs a data folder (testenv.InstallMariaDB) and starts mariadbd on it,
// then creates the database monitor.
func startMariaDB(t *testing.T) *mariaServer {
	t.Helper()
	in := testenv.InstallMariaDB(t)
	m := &mariaServer{DSN: in.Root + "monitor?parseTime=true"}
	db, err := sql.Open("mysql", in.Root+"?timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	m.server = server{name: "mariadb", port: in.Port, dir: in.Dir, args: in.Args, bin: in.Bin,
		ping: func(ctx context.Context) error { return db.PingContext(ctx) }}
	m.start(t)
	t.Cleanup(func() { m.kill(t) })
	if _, err := db.Exec("CREATE DATABASE monitor"); err != nil {
		t.Fatal(err)
	}
	return m
}
