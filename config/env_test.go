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
		"MONITOR_FORGET_AFTER=1h", // in the contract, not built yet
		"MONITOR_WHATEVER=1",
		"PATH=/usr/bin",
		"NOEQUALS",
	})
	want := []string{
		"MONITOR_FORGET_AFTER is in the contract but not built in this version; it is ignored",
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

// TestContractRedisTopologiesAreRefused: the contract names Redis Cluster and Sentinel,
// which this version does not build; setting them must stop start-up rather than leave
// monitor quietly on another Redis.
func TestContractRedisTopologiesAreRefused(t *testing.T) {
	for _, name := range []string{"MONITOR_REDIS_CLUSTER", "MONITOR_REDIS_SENTINELS", "MONITOR_REDIS_MASTER"} {
		_, err := Load(os.DevNull, []string{name + "=127.0.0.1:7000"})
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != name {
			t.Errorf("%s: err = %v, want one naming it", name, err)
		}
		// Empty is the contract's default and must start.
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
