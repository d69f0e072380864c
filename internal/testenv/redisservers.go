package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisTools returns the paths of redis-server and redis-cli; without them the test is
// skipped, or fails under MONITOR_TEST_REAL=1.
func redisTools(t testing.TB) (server, cli string) {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		Missing(t, "redis-server and redis-cli are not installed (apt-get install redis-server redis-tools)")
	}
	return server, cli
}

// RedisServer is a redis-server (or sentinel) a test started on a free port, for the
// tests that need a cluster, a sentinel set or a server they may kill.
type RedisServer struct {
	Addr string
	args []string // the command line, for restart
	cmd  *exec.Cmd
	done chan error
}

// startRedisServer starts redis-server with its data and config in a directory of its
// own under the test's temporary folder, persistence off, and kills it when the test
// ends. conf is the config file's extra lines (for a sentinel it must hold the monitor
// line, and sentinel is true).
func startRedisServer(t testing.TB, server string, sentinel bool, conf ...string) *RedisServer {
	t.Helper()
	addr := FreeAddr(t)
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
	p := &RedisServer{Addr: addr, args: append([]string{server}, args...)}
	p.Start(t)
	t.Cleanup(p.Kill)
	return p
}

// Start runs the server's command line and waits until it answers.
func (p *RedisServer) Start(t testing.TB) {
	t.Helper()
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.done = make(chan error, 1)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(p.cmd, p.done)
	c := redis.NewClient(&redis.Options{Addr: p.Addr})
	defer c.Close()
	WaitFor(t, 10*time.Second, "redis-server on "+p.Addr, func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

// Kill ends the server with SIGKILL, at once: no shutdown, no last write.
func (p *RedisServer) Kill() {
	select {
	case err := <-p.done:
		p.done <- err
	default:
		_ = p.cmd.Process.Signal(syscall.SIGKILL) // it may have exited meanwhile
		p.done <- <-p.done
	}
}

// NewRedisCluster starts n redis-servers in cluster mode and joins them into a cluster of
// n masters with redis-cli --cluster create, which splits the 16384 slots evenly. It
// returns their addresses once every node reports the cluster ok.
func NewRedisCluster(t testing.TB, n int) []string {
	t.Helper()
	server, cli := redisTools(t)
	addrs := make([]string, n)
	for i := range addrs {
		// The bus port defaults to the port + 10000, past 65535 for a high free port.
		_, bus, _ := net.SplitHostPort(FreeAddr(t))
		addrs[i] = startRedisServer(t, server, false, "cluster-enabled yes", "cluster-config-file nodes.conf",
			"cluster-node-timeout 5000", "cluster-port "+bus).Addr
	}
	create := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		WaitFor(t, 20*time.Second, "cluster state ok on "+a, func() bool {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return addrs
}

// SlotOwners maps each slot range of the cluster to the address of its master.
type SlotOwners []redis.ClusterSlot

// MasterOf returns the address of the master serving slot.
func (s SlotOwners) MasterOf(slot int64) string {
	for _, r := range s {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr
		}
	}
	return ""
}

// SentinelSet is one master, one replica and three sentinels watching them as "mymaster".
type SentinelSet struct {
	Master, Replica *RedisServer
	Sentinels       []string
}

// NewSentinelSet starts the set and waits until every sentinel knows the replica.
func NewSentinelSet(t testing.TB) *SentinelSet {
	t.Helper()
	server, _ := redisTools(t)
	s := &SentinelSet{}
	// No delay before the first sync (the default waits 5 s for more replicas).
	s.Master = startRedisServer(t, server, false, "repl-diskless-sync-delay 0")
	host, port, _ := net.SplitHostPort(s.Master.Addr)
	s.Replica = startRedisServer(t, server, false, "replicaof "+host+" "+port, "repl-diskless-sync-delay 0")
	rc := redis.NewClient(&redis.Options{Addr: s.Replica.Addr})
	WaitFor(t, 20*time.Second, "the replica in sync", func() bool {
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
		s.Sentinels = append(s.Sentinels, p.Addr)
	}
	for _, a := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: a})
		WaitFor(t, 20*time.Second, "sentinel "+a+" sees the replica", func() bool {
			rs, err := c.Replicas(context.Background(), "mymaster").Result()
			return err == nil && len(rs) == 1
		})
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// MasterAddr asks a sentinel which address is the master now.
func (s *SentinelSet) MasterAddr(t testing.TB) string {
	t.Helper()
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[0]})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(context.Background(), "mymaster").Result()
	if err != nil || len(hp) != 2 {
		return ""
	}
	return net.JoinHostPort(hp[0], hp[1])
}
