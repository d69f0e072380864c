package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// meaningfulZero are the number keys whose 0 the README documents: Redis db 0, and
// MONITOR_UNSENT_THRESHOLD=0 turns the unsent_records alert off, MONITOR_ALERT_REPEAT_EVERY=0 never repeats,
// MONITOR_ALERT_GROUP_WAIT=0 sends a group's first notice at the next sweep, MONITOR_FORGET_AFTER=0 never forgets.
var meaningfulZero = map[string]bool{"redis_db": true, "unsent_threshold": true, "alert_repeat_every": true,
	"alert_group_wait": true, "forget_after": true}

// TestExplicitZeroIsValidatedAsGiven: an explicit 0 of every number and duration key,
// from the environment or the YAML file, is either refused naming the key or kept as
// the documented 0; it is never silently replaced by the default (MONITOR_DEVICE_RATE=0
// used to become 1, so "must be a positive number" could never fire).
func TestExplicitZeroIsValidatedAsGiven(t *testing.T) {
	t.Chdir(t.TempDir())
	rt := reflect.TypeFor[Config]()
	n := 0
	for i := range rt.NumField() {
		field := rt.Field(i)
		if field.Type.Kind() == reflect.String {
			continue
		}
		n++
		key := field.Tag.Get("yaml")
		name := EnvPrefix + strings.ToUpper(key)
		zero := "0"
		if field.Type == reflect.TypeFor[time.Duration]() {
			zero = "0s"
		}
		file := filepath.Join(t.TempDir(), "monitor.yaml")
		if err := os.WriteFile(file, []byte(key+": "+zero+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for how, load := range map[string]func() (*Config, error){
			"env":  func() (*Config, error) { return Load("", []string{name + "=" + zero}) },
			"yaml": func() (*Config, error) { return Load(file, nil) },
		} {
			c, err := load()
			if meaningfulZero[key] {
				if err != nil {
					t.Errorf("%s %s=%s: %v, want it accepted", how, name, zero, err)
				} else if v := reflect.ValueOf(c).Elem().Field(i); !v.IsZero() {
					t.Errorf("%s %s=%s loaded as %v, want 0", how, name, zero, v)
				}
				continue
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != name {
				got := "<nil>"
				if c != nil {
					got = fmt.Sprint(reflect.ValueOf(c).Elem().Field(i))
				}
				t.Errorf("%s %s=%s: err = %v (value %s), want it refused naming %s", how, name, zero, err, got, name)
			}
		}
	}
	if n < 15 {
		t.Fatalf("only %d number keys found; the scan is broken", n)
	}
}

// TestDocumentedOffValues: MONITOR_UNSENT_THRESHOLD=0 and an empty MONITOR_LOG_PULL_EVERY
// mean off, and a key left unset still gets its default.
func TestDocumentedOffValues(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := Load("", []string{"MONITOR_UNSENT_THRESHOLD=0", "MONITOR_LOG_PULL_EVERY=", "MONITOR_REDIS_DB=0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.UnsentThreshold != 0 || c.LogPullEvery != "" || c.RedisDB != 0 {
		t.Fatalf("got unsent_threshold %d, log_pull_every %q, redis_db %d", c.UnsentThreshold, c.LogPullEvery, c.RedisDB)
	}
	if c.DeviceRate != 1 || c.RetentionDays != 90 || c.GroupMaxDelay != 2*time.Second {
		t.Fatalf("unset keys lost their defaults: %+v", c)
	}
}
