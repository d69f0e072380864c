package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	t.Chdir(t.TempDir()) // no config/monitor.yaml here
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8888" || c.DeviceRate != 1 || c.DeviceBurst != 10 || c.OfflineAfter != 30*time.Minute ||
		c.SweepEvery != "1m" || c.LogDir != "./data/logs" || c.LogPullSelect != "all" || c.DeviceAuth != "off" {
		t.Fatalf("defaults differ from the contract: %+v", c)
	}
	if !c.Embedded() {
		t.Fatal("no Redis and no MySQL configured should be embedded mode")
	}
}

func TestEnvOverridesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "monitor.yaml")
	yaml := "http_addr: :9000\nredis_addr: 10.0.0.1:6379\noperator_token: 0123456789abcdef0123\noffline_after: 10m\ndevice_rate: 2.5\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"MONITOR_HTTP_ADDR=:9100", "MONITOR_REDIS_DB=3", "PATH=/bin", "MONITOR_SWEEP_EVERY=*/5 * * * *"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":9100" || c.RedisAddr != "10.0.0.1:6379" || c.RedisDB != 3 || c.OfflineAfter != 10*time.Minute ||
		c.DeviceRate != 2.5 || c.SweepEvery != "*/5 * * * *" {
		t.Fatalf("got %+v", c)
	}
}

func TestLoadRejectsBadValuesNamingTheKey(t *testing.T) {
	t.Chdir(t.TempDir())
	const token = "MONITOR_OPERATOR_TOKEN=0123456789abcdef0123"
	tests := []struct {
		env  []string
		key  string
		want string
	}{
		{[]string{"MONITOR_REDIS_DB=x"}, "MONITOR_REDIS_DB", "not a whole number"},
		{[]string{"MONITOR_REDIS_DB=16"}, "MONITOR_REDIS_DB", "0-15"},
		{[]string{"MONITOR_REDIS_ADDR=localhost", token}, "MONITOR_REDIS_ADDR", "host:port"},
		{[]string{"MONITOR_MYSQL_DSN=nonsense", token}, "MONITOR_MYSQL_DSN", "DSN"},
		{[]string{"MONITOR_REDIS_ADDR=127.0.0.1:6379"}, "MONITOR_OPERATOR_TOKEN", "required"},
		{[]string{"MONITOR_MYSQL_DSN=root@tcp(127.0.0.1:3306)/monitor"}, "MONITOR_OPERATOR_TOKEN", "required"},
		{[]string{"MONITOR_OPERATOR_TOKEN=short"}, "MONITOR_OPERATOR_TOKEN", "too short"},
		{[]string{"MONITOR_DEVICE_AUTH=maybe"}, "MONITOR_DEVICE_AUTH", "off or tenant-key"},
		{[]string{"MONITOR_DEVICE_AUTH=tenant-key"}, "MONITOR_DEVICE_KEYS", "empty"},
		{[]string{"MONITOR_DEVICE_AUTH=tenant-key", "MONITOR_DEVICE_KEYS=0:a,x:b"}, "MONITOR_DEVICE_KEYS", "tenant"},
		{[]string{"MONITOR_DEVICE_AUTH=tenant-key", "MONITOR_DEVICE_KEYS=0:a,0:b"}, "MONITOR_DEVICE_KEYS", "two keys"},
		{[]string{"MONITOR_DEVICE_RATE=fast"}, "MONITOR_DEVICE_RATE", "not a number"},
		{[]string{"MONITOR_DEVICE_RATE=-1"}, "MONITOR_DEVICE_RATE", "positive"},
		{[]string{"MONITOR_REDIS_SHED_SHARE=0"}, "MONITOR_REDIS_SHED_SHARE", "share of maxmemory"},
		{[]string{"MONITOR_REDIS_SHED_SHARE=1.5"}, "MONITOR_REDIS_SHED_SHARE", "share of maxmemory"},
		{[]string{"MONITOR_DEVICE_BURST=-2"}, "MONITOR_DEVICE_BURST", "at least 1"},
		{[]string{"MONITOR_OFFLINE_AFTER=soon"}, "MONITOR_OFFLINE_AFTER", "duration"},
		{[]string{"MONITOR_OFFLINE_AFTER=5s"}, "MONITOR_OFFLINE_AFTER", "below 1m"},
		{[]string{"MONITOR_ALERT_WEBHOOK_URL=ftp://x"}, "MONITOR_ALERT_WEBHOOK_URL", "http(s) URL"},
		{[]string{"MONITOR_ALERT_WEBHOOK_SECRET=secret\n"}, "MONITOR_ALERT_WEBHOOK_SECRET", "white space"},
		{[]string{"MONITOR_ALERT_REPEAT_EVERY=often"}, "MONITOR_ALERT_REPEAT_EVERY", "duration"},
		{[]string{"MONITOR_ALERT_REPEAT_EVERY=30s"}, "MONITOR_ALERT_REPEAT_EVERY", "below 1m"},
		{[]string{"MONITOR_ALERT_REPEAT_EVERY=-1h"}, "MONITOR_ALERT_REPEAT_EVERY", "below 1m"},
		{[]string{"MONITOR_INGEST_GROUPS=-1"}, "MONITOR_INGEST_GROUPS", "between 1 and 1024"},
		{[]string{"MONITOR_GROUP_MAX_SIZE=5000"}, "MONITOR_GROUP_MAX_SIZE", "between 1 and 4000"},
		{[]string{"MONITOR_GROUP_GRACE_PERIOD=500ms"}, "MONITOR_GROUP_GRACE_PERIOD", "minimum of 1s"},
		{[]string{"MONITOR_TIMEZONE=Mars/Olympus"}, "MONITOR_TIMEZONE", "time zone"},
		{[]string{"MONITOR_LOG_LEVEL=loud"}, "MONITOR_LOG_LEVEL", "debug, info"},
		{[]string{"MONITOR_LOG_FORMAT=logfmt"}, "MONITOR_LOG_FORMAT", "json or text"},
		{[]string{"MONITOR_PROMETHEUS_URL=prometheus:9090"}, "MONITOR_PROMETHEUS_URL", "http(s) URL"},
		{[]string{"MONITOR_OTLP_ENDPOINT=grpc://collector:4317"}, "MONITOR_OTLP_ENDPOINT", "http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, " "), func(t *testing.T) {
			_, err := Load("", tt.env)
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v, want a KeyError", err)
			}
			if ke.Key != tt.key || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want key %s and %q", err, tt.key, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestErrorsNeverShowSecrets(t *testing.T) {
	t.Chdir(t.TempDir())
	_, err := Load("", []string{"MONITOR_DEVICE_AUTH=tenant-key", "MONITOR_DEVICE_KEYS=0:supersecretkey,oops"})
	if err == nil || strings.Contains(err.Error(), "supersecretkey") {
		t.Fatalf("err = %v", err)
	}
	_, err = Load("", []string{"MONITOR_MYSQL_DSN=root:hunter2@nowhere", "MONITOR_OPERATOR_TOKEN=0123456789abcdef0123"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.yaml"), nil); err == nil {
		t.Fatal("an explicit missing file must be an error")
	}
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte("http_adr: :1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "http_adr") {
		t.Fatalf("unknown key: err = %v", err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(empty, nil); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

// TestExternalBackendsNeedAnOperatorToken: with a real Redis or MySQL the configuration
// is refused without an operator token, naming the key, and accepted with one.
func TestExternalBackendsNeedAnOperatorToken(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, env := range [][]string{
		{"MONITOR_REDIS_ADDR=127.0.0.1:6379"},
		{"MONITOR_MYSQL_DSN=root@tcp(127.0.0.1:3306)/monitor"},
		{"MONITOR_REDIS_ADDR=127.0.0.1:6379", "MONITOR_OPERATOR_TOKEN="},
	} {
		_, err := Load("", env)
		if err == nil || !strings.HasPrefix(err.Error(), "MONITOR_OPERATOR_TOKEN:") {
			t.Errorf("%v: err = %v, want MONITOR_OPERATOR_TOKEN refused", env, err)
		}
	}
	if _, err := Load("", []string{"MONITOR_REDIS_ADDR=127.0.0.1:6379", "MONITOR_OPERATOR_TOKEN=test-operator-token-0123456789"}); err != nil {
		t.Fatalf("with a token: %v", err)
	}
}

// TestKeyAndTokenErrorsNeverShowThem: a bad device key list or operator token is
// reported naming its key, never its secret value.
func TestKeyAndTokenErrorsNeverShowThem(t *testing.T) {
	const (
		token = "test-operator-token-0123456789"
		key1  = "key-of-tenant-one-aaaa"
		key2  = "key-of-tenant-two-bbbb"
	)
	for _, env := range [][]string{
		{"MONITOR_DEVICE_AUTH=tenant-key", "MONITOR_DEVICE_KEYS=1:" + key1 + ",x:" + key2},
		{"MONITOR_DEVICE_AUTH=tenant-key", "MONITOR_DEVICE_KEYS=1:" + key1 + ",1:" + key2},
		{"MONITOR_DEVICE_AUTH=tenant-key", "MONITOR_DEVICE_KEYS=" + key1},
		{"MONITOR_OPERATOR_TOKEN=" + token, "MONITOR_READONLY_TOKEN=" + token},
		{"MONITOR_OPERATOR_TOKEN=" + token[:10]},
	} {
		_, err := Load(os.DevNull, env)
		if err == nil {
			t.Fatalf("%v was accepted", env)
		}
		for _, secret := range []string{token, key1, key2, token[:10]} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%v: the error shows %q: %v", env, secret, err)
			}
		}
	}
}

func TestAlertWebhookSecretIsASetting(t *testing.T) {
	t.Chdir(t.TempDir())
	env := []string{"MONITOR_ALERT_WEBHOOK_SECRET=s3cret"}
	c, err := Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	if c.AlertWebhookSecret != "s3cret" {
		t.Fatalf("AlertWebhookSecret = %q", c.AlertWebhookSecret)
	}
	if w := EnvWarnings(env); len(w) != 0 {
		t.Fatalf("warnings %v", w)
	}
}

func TestAlertRepeatEveryIsASetting(t *testing.T) {
	t.Chdir(t.TempDir())
	for env, want := range map[string]time.Duration{
		"MONITOR_ALERT_REPEAT_EVERY=4h": 4 * time.Hour,
		"MONITOR_ALERT_REPEAT_EVERY=":   0,
		"MONITOR_ALERT_REPEAT_EVERY=0":  0,
	} {
		c, err := Load("", []string{env})
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		if c.AlertRepeatEvery != want {
			t.Fatalf("%s: AlertRepeatEvery = %v, want %v", env, c.AlertRepeatEvery, want)
		}
		if w := EnvWarnings([]string{env}); len(w) != 0 {
			t.Fatalf("%s: warnings %v", env, w)
		}
	}
	if Default().AlertRepeatEvery != 0 {
		t.Fatal("repeats by default")
	}
}

// TestEmptyNumbersAndDurationsMeanTheDefault: an exported but empty variable (as compose
// passes ${VAR:-}) is unset, like an empty text value: MONITOR_FORGET_AFTER= keeps the
// contract's 720h instead of turning forgetting off.
func TestEmptyNumbersAndDurationsMeanTheDefault(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := Load("", []string{"MONITOR_FORGET_AFTER=", "MONITOR_OFFLINE_AFTER= ", "MONITOR_REDIS_DB=",
		"MONITOR_INGEST_QUEUES=", "MONITOR_REDIS_SHED_SHARE="})
	if err != nil {
		t.Fatal(err)
	}
	if c.ForgetAfter != 720*time.Hour || c.OfflineAfter != 30*time.Minute || c.RedisDB != 0 || c.IngestQueues != 1 || c.RedisShedShare != 0.8 {
		t.Errorf("forget %v, offline %v, db %d, queues %d, shed %v; want 720h, 30m, 0, 1, 0.8",
			c.ForgetAfter, c.OfflineAfter, c.RedisDB, c.IngestQueues, c.RedisShedShare)
	}
}
