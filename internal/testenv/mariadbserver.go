package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the database/sql driver of the readiness check
)

// MariaDBInstall is a data folder that mariadb-install-db created, and the command line
// that serves it with mariadbd on a free port: for the tests that need a server of their
// own, one they may kill or one started with settings the shared server must not change.
type MariaDBInstall struct {
	// Bin and Args are mariadbd's command line; Dir holds the data folder, the socket
	// and the server's log.
	Bin  string
	Args []string
	Dir  string
	Port int
	// Root is the go-sql-driver DSN of root on the server, without a database.
	Root string
}

// InstallMariaDB creates a data folder with mariadb-install-db and returns the command
// line of mariadbd on it, with extra appended (e.g. "--local-infile=0"). It starts
// nothing. Without the binaries the test is skipped, or fails under MONITOR_TEST_REAL=1.
func InstallMariaDB(t testing.TB, extra ...string) *MariaDBInstall {
	t.Helper()
	bin := LookBinary(t, "mariadbd")
	install := LookBinary(t, "mariadb-install-db")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	// Its own temporary folder: the bootstrap's temporary tables in a shared /tmp collide
	// with those of other servers installed at the same moment.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(install, "--no-defaults", "--datadir="+data, "--tmpdir="+tmp, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--user="+currentUser())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	_, p, err := net.SplitHostPort(FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	var port int
	if _, err := fmt.Sscan(p, &port); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--tmpdir=" + tmp, fmt.Sprintf("--port=%d", port),
		"--bind-address=127.0.0.1", "--socket=" + filepath.Join(dir, "mysqld.sock"), "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--user=" + currentUser(), "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=32M",
		"--skip-name-resolve", "--max-connections=200", "--innodb-flush-log-at-trx-commit=1"}, extra...)
	return &MariaDBInstall{Bin: bin, Args: args, Dir: dir, Port: port, Root: fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)}
}

// Run starts mariadbd, waits until it answers, creates database name on it and returns
// that database's DSN; the server is killed when the test ends.
func (m *MariaDBInstall) Run(t testing.TB, name string) string {
	t.Helper()
	logf, err := os.Create(filepath.Join(m.Dir, "mariadb.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(m.Bin, m.Args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = m.Dir, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a Ctrl-C of the run reaches it only through cleanup
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL) // it may have exited already
		<-done
		if err := logf.Close(); err != nil {
			t.Error(err)
		}
	})
	db, err := sql.Open("mysql", m.Root+"?timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	WaitFor(t, time.Minute, "mariadbd on port "+fmt.Sprint(m.Port), func() bool {
		select {
		case err := <-done:
			done <- err
			out, _ := os.ReadFile(filepath.Join(m.Dir, "mariadb.log"))
			t.Fatalf("mariadbd exited at start: %v\n%s", err, out)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return db.PingContext(ctx) == nil
	})
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	return m.Root + name + "?parseTime=true"
}

// LookBinary finds a server binary on PATH or in the sbin folders Debian puts them in.
// Without it the test is skipped, or fails under MONITOR_TEST_REAL=1.
func LookBinary(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, "%s is not installed (apt-get install redis-server mariadb-server)", name)
	return ""
}

// currentUser is the user mariadbd runs as: the test's own (mariadbd refuses to run as
// root unless --user names it).
func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return "root"
	}
	return u.Username
}
