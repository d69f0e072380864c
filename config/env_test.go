package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestEnvWarningsNameUnknownVariables(t *testing.T) {
	got := EnvWarnings([]string{
		"MONITOR_REDIS_ADR=127.0.0.1:6379", // a typo
		"MONITOR_REDIS_ADDR=127.0.0.1:6379",
		"MONITOR_TEST_REAL=1",
		"MONITOR_FORGET_AFTER=1h",
		"MONITOR_WHATEVER=1",
		"PATH=/usr/bin",
		"NOEQUALS",
	})
	want := []string{
		"MONITOR_REDIS_ADR is not a monitor setting and is ignored (did you mean MONITOR_REDIS_ADDR?)",
		"MONITOR_WHATEVER is not a monitor setting and is ignored",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if w := EnvWarnings([]string{"MONITOR_HTTP_ADDR=:1", "MONITOR_TEST_REDIS_ADDR=x"}); len(w) != 0 {
		t.Fatalf("known variables warned about: %v", w)
	}
}

// TestRedisTopologies: a cluster or a sentinel set is named by its own variables, one
// way to Redis at a time, each complete; a bad one is refused naming its key.
func TestRedisTopologies(t *testing.T) {
	tok := "MONITOR_OPERATOR_TOKEN=0123456789abcdef"
	c, err := Load(os.DevNull, []string{tok, "MONITOR_REDIS_CLUSTER= 10.0.0.1:7000, 10.0.0.2:7000 ,"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RedisClusterAddrs(); !slices.Equal(got, []string{"10.0.0.1:7000", "10.0.0.2:7000"}) || !c.External() {
		t.Fatalf("cluster addrs %v, external %v", got, c.External())
	}
	// The queue count defaults to one on one Redis and to several on a cluster, and a
	// value given is kept either way.
	if c.IngestQueues != DefaultClusterIngestQueues || Default().IngestQueues != DefaultIngestQueues {
		t.Fatalf("default ingest queues: %d on a cluster, %d on one Redis", c.IngestQueues, Default().IngestQueues)
	}
	if c, err := Load(os.DevNull, []string{tok, "MONITOR_REDIS_CLUSTER=a:1", "MONITOR_INGEST_QUEUES=1"}); err != nil || c.IngestQueues != 1 {
		t.Fatalf("MONITOR_INGEST_QUEUES=1 on a cluster: %v, %v", c, err)
	}
	c, err = Load(os.DevNull, []string{tok, "MONITOR_REDIS_SENTINELS=a:26379,b:26379", "MONITOR_REDIS_MASTER=mymaster", "MONITOR_REDIS_DB=2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RedisSentinelAddrs(); !slices.Equal(got, []string{"a:26379", "b:26379"}) || c.RedisMaster != "mymaster" {
		t.Fatalf("sentinels %v, master %q", got, c.RedisMaster)
	}
	for _, bad := range []struct {
		env []string
		key string
	}{
		{[]string{"MONITOR_REDIS_ADDR=a:1", "MONITOR_REDIS_CLUSTER=b:1"}, "MONITOR_REDIS_CLUSTER"},
		{[]string{"MONITOR_REDIS_CLUSTER=b:1", "MONITOR_REDIS_SENTINELS=c:1", "MONITOR_REDIS_MASTER=m"}, "MONITOR_REDIS_CLUSTER"},
		{[]string{"MONITOR_REDIS_CLUSTER=b"}, "MONITOR_REDIS_CLUSTER"},
		{[]string{"MONITOR_REDIS_CLUSTER=,"}, "MONITOR_REDIS_CLUSTER"},
		{[]string{"MONITOR_REDIS_CLUSTER=b:1", "MONITOR_REDIS_DB=1"}, "MONITOR_REDIS_DB"},
		{[]string{"MONITOR_REDIS_SENTINELS=c:1"}, "MONITOR_REDIS_MASTER"},
		{[]string{"MONITOR_REDIS_SENTINELS=c"}, "MONITOR_REDIS_SENTINELS"},
		{[]string{"MONITOR_REDIS_MASTER=m"}, "MONITOR_REDIS_MASTER"},
		{[]string{"MONITOR_REDIS_ADDR=a:1,b:1"}, "MONITOR_REDIS_ADDR"},
		{[]string{"MONITOR_INGEST_QUEUES=0"}, "MONITOR_INGEST_QUEUES"},
		{[]string{"MONITOR_INGEST_QUEUES=257"}, "MONITOR_INGEST_QUEUES"},
	} {
		_, err := Load(os.DevNull, append([]string{tok}, bad.env...))
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != bad.key {
			t.Errorf("%v: err = %v, want one naming %s", bad.env, err, bad.key)
		}
	}
	// Empty is the contract's default and must start.
	for _, name := range []string{"MONITOR_REDIS_CLUSTER", "MONITOR_REDIS_SENTINELS", "MONITOR_REDIS_MASTER"} {
		if _, err := Load(os.DevNull, []string{name + "="}); err != nil {
			t.Errorf("%s empty: %v, want its default accepted", name, err)
		}
	}
}

// TestEveryVariableTheRepositoryReadsIsKnown scans the repository's code, scripts and
// compose file for MONITOR_ names and checks that EnvWarnings knows each, so a switch
// added to a test or script without registering it would make every start-up warn.
func TestEveryVariableTheRepositoryReadsIsKnown(t *testing.T) {
	name := regexp.MustCompile(`MONITOR_[A-Z0-9_]*[A-Z0-9]`)
	seen := map[string][]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && d.Name() != ".ci" && path != ".." || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		// This package defines the names, and its tests spell unknown ones on purpose.
		if filepath.Dir(path) == filepath.Join("..", "config") {
			return nil
		}
		ext := filepath.Ext(path)
		if ext != ".go" && ext != ".sh" && ext != ".yml" && ext != ".yaml" && d.Name() != "Makefile" && d.Name() != "run" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllString(string(b), -1) {
			seen[m] = append(seen[m], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 20 {
		t.Fatalf("found only %d MONITOR_ names; the scan is broken", len(seen))
	}
	for n, paths := range seen {
		if n == EnvPrefix[:len(EnvPrefix)-1] {
			continue
		}
		if w := EnvWarnings([]string{n + "=x"}); len(w) != 0 {
			t.Errorf("%s (in %s) is unknown: %s", n, strings.Join(slices.Compact(paths), ", "), w[0])
		}
	}
}
