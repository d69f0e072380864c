package config

import (
	"errors"
	"os"
	"testing"
)

func TestScheduleKeysNamedInErrors(t *testing.T) {
	for key, env := range map[string]string{
		"MONITOR_SWEEP_EVERY":      "MONITOR_SWEEP_EVERY=soon",
		"MONITOR_LOG_PULL_EVERY":   "MONITOR_LOG_PULL_EVERY=99 * * * *",
		"MONITOR_LOG_PULL_SELECT":  "MONITOR_LOG_PULL_SELECT=depot=3",
		"MONITOR_COMMAND_TTL":      "MONITOR_COMMAND_TTL=10s",
		"MONITOR_RETENTION_DAYS":   "MONITOR_RETENTION_DAYS=-1",
		"MONITOR_UNSENT_THRESHOLD": "MONITOR_UNSENT_THRESHOLD=-5",
	} {
		file := t.TempDir() + "/empty.yaml"
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(file, []string{env})
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != key {
			t.Errorf("%s: error %v, want one naming %s", env, err, key)
		}
	}
}
