package app

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"monitor/internal/testenv"
)

// redisTools returns the paths of redis-server and redis-cli; without them the test is
// skipped, or fails under MONITOR_TEST_REAL=1.
func redisTools(t *testing.T) (server, cli string) {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		testenv.Missing(t, "redis-server and redis-cli are not installed (apt-get install redis-server redis-tools)")
	}
	return server, cli
}

// redisProc is a redis-server (or sentinel) a test started on a free port.
type redisProc struct {
	addr string
	args []string // the command line, for restart
	cmd  *exec.Cmd
	done chan error
	log  string
}

// startRedisServer starts redis-server with its data and config in a directory of its
// own under the test's temporary folder, persistence off, and kills it when the test
// ends. conf is the config file's extra lines (for a sentinel it must hold the monitor
// line, and sentinel is true).
func startRedisServer(t *testing.T, server string, sentinel bool, conf ...string) *redisProc {
	t.Helper()
	addr := testenv.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	lines := append([]string{"port " + port, "bind 127.0.0.1", "dir " + dir, `save ""`, "appendonly no",
		"logfile " + filepath.Join(dir, "redis.log")}, conf...)
	path := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{path}
	if sentinel {
		args = append(args, "--sentinel")
	}
	p := &redisProc{addr: addr, args: append([]string{server}, args...), log: filepath.Join(dir, "redis.log")}
	p.start(t)
	t.Cleanup(p.kill)
	return p
}

// start runs the server's command line and waits until it answers.
func (p *redisProc) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.done = make(chan error, 1)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(p.cmd, p.done)
	c := redis.NewClient(&redis.Options{Addr: p.addr})
	defer c.Close()
	testenv.WaitFor(t, 10*time.Second, "redis-server on "+p.addr, func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

// kill ends the server with SIGKILL, at once: no shutdown, no last write.
func (p *redisProc) kill() {
	select {
	case err := <-p.done:
		p.done <- err
	default:
		_ = p.cmd.Process.Signal(syscall.SIGKILL) // it may have exited meanwhile
		p.done <- <-p.done
	}
}

// startCluster starts n redis-servers in cluster mode and joins them into a cluster of
// n masters with redis-cli --cluster create, which splits the 16384 slots evenly. It
// returns their addresses once every node reports the cluster ok.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	server, cli := redisTools(t)
	addrs := make([]string, n)
	for i := range addrs {
		// The bus port defaults to the port + 10000, past 65535 for a high free port.
		_, bus, _ := net.SplitHostPort(testenv.FreeAddr(t))
		addrs[i] = startRedisServer(t, server, false, "cluster-enabled yes", "cluster-config-file nodes.conf",
			"cluster-node-timeout 5000", "cluster-port "+bus).addr
	}
	create := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		testenv.WaitFor(t, 20*time.Second, "cluster state ok on "+a, func() bool {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return addrs
}

// slotOwners maps each slot range of the cluster to the address of its master.
type slotOwners []redis.ClusterSlot

// masterOf returns the address of the master serving slot.
func (s slotOwners) masterOf(slot int64) string {
	for _, r := range s {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr
		}
	}
	return ""
}

// sentinelSet is one master, one replica and three sentinels watching them as "mymaster".
type sentinelSet struct {
	master, replica *redisProc
	sentinels       []string
}

// startSentinelSet starts the set and waits until every sentinel knows the replica.
func startSentinelSet(t *testing.T) *sentinelSet {
	t.Helper()
	server, _ := redisTools(t)
	s := &sentinelSet{}
	// No delay before the first sync (the default waits 5 s for more replicas).
	s.master = startRedisServer(t, server, false, "repl-diskless-sync-delay 0")
	host, port, _ := net.SplitHostPort(s.master.addr)
	s.replica = startRedisServer(t, server, false, "replicaof "+host+" "+port, "repl-diskless-sync-delay 0")
	rc := redis.NewClient(&redis.Options{Addr: s.replica.addr})
	testenv.WaitFor(t, 20*time.Second, "the replica in sync", func() bool {
		info, err := rc.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		p := startRedisServer(t, server, true,
			fmt.Sprintf("sentinel monitor mymaster %s %s 2", host, port),
			"sentinel down-after-milliseconds mymaster 1000",
			"sentinel failover-timeout mymaster 10000",
			"sentinel parallel-syncs mymaster 1")
		s.sentinels = append(s.sentinels, p.addr)
	}
	for _, a := range s.sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: a})
		testenv.WaitFor(t, 20*time.Second, "sentinel "+a+" sees the replica", func() bool {
			rs, err := c.Replicas(context.Background(), "mymaster").Result()
			return err == nil && len(rs) == 1
		})
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// masterAddr asks a sentinel which address is the master now.
func (s *sentinelSet) masterAddr(t *testing.T) string {
	t.Helper()
	c := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0]})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(context.Background(), "mymaster").Result()
	if err != nil || len(hp) != 2 {
		return ""
	}
	return net.JoinHostPort(hp[0], hp[1])
}

// itoa is strconv.Itoa, short for building environments.
func itoa(n int) string { return strconv.Itoa(n) }
