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

// TestScheduleKeysRefuseOutOfRangeCron: a cron field whose step or value is out of range
// ("*/61" minutes ran hourly) is refused for every schedule key, naming it.
func TestScheduleKeysRefuseOutOfRangeCron(t *testing.T) {
	for _, key := range []string{"MONITOR_SWEEP_EVERY", "MONITOR_LOG_PULL_EVERY", "MONITOR_COMMAND_SYNC_EVERY", "MONITOR_RETENTION_EVERY"} {
		for _, spec := range []string{"*/61 * * * *", "0 */24 * * *", "0 0 */32 * *", "0 0 1 */13 *", "0 0 * * */7", "0 24 * * *"} {
			_, err := Load(os.DevNull, []string{key + "=" + spec})
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != key {
				t.Errorf("%s=%s: err = %v, want one naming %s", key, spec, err, key)
			}
		}
		for _, spec := range []string{"*/59 * * * *", "0 */6 * * *", "17 3 * * *", "5m"} {
			if _, err := Load(os.DevNull, []string{key + "=" + spec}); err != nil {
				t.Errorf("%s=%s: %v", key, spec, err)
			}
		}
	}
}
