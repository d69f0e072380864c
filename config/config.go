// Package config loads the one configuration struct that every role of monitor shares.
//
// Values come from a YAML file whose keys are the lower-case environment names without
// the MONITOR_ prefix (http_addr, redis_addr, …), and every key can be overridden by its
// MONITOR_… environment variable. After loading, defaults are filled for the keys neither
// the file nor the environment set (an explicit 0 is kept and validated as given; an empty
// string still means the default), and Validate names the first bad key.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"monitor/model"
	"monitor/scheduler"
	"monitor/task"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultFile is read when -f is not given and the file exists.
const DefaultFile = "config/monitor.yaml"

// Config is the whole configuration of a monitor process. The yaml tag of each field is
// also its environment name: MONITOR_ followed by the tag in upper case.
type Config struct {
	HTTPAddr      string `yaml:"http_addr"`
	RedisAddr     string `yaml:"redis_addr"`
	RedisPassword string `yaml:"redis_password"`
	RedisDB       int    `yaml:"redis_db"`
	// RedisCluster is the comma-separated seed addresses of a Redis Cluster, and
	// RedisSentinels those of the Sentinels watching the master named RedisMaster: each
	// instead of RedisAddr. At most one of the three is set.
	RedisCluster   string `yaml:"redis_cluster"`
	RedisSentinels string `yaml:"redis_sentinels"`
	RedisMaster    string `yaml:"redis_master"`
	// RedisShedShare is the share of Redis's maxmemory at which the API starts refusing
	// reports (503), leaving the rest for the workers to drain the backlog.
	RedisShedShare float64 `yaml:"redis_shed_share"`
	MySQLDSN       string  `yaml:"mysql_dsn"`
	// DataDir holds the embedded SQLite file when no MySQL DSN is configured.
	DataDir string `yaml:"data_dir"`

	OperatorToken string `yaml:"operator_token"`
	// ReadOnlyToken, when set, is a second operator secret that may read but not change anything.
	ReadOnlyToken string  `yaml:"readonly_token"`
	DeviceAuth    string  `yaml:"device_auth"`
	DeviceKeys    string  `yaml:"device_keys"`
	DeviceRate    float64 `yaml:"device_rate"`
	DeviceBurst   int     `yaml:"device_burst"`

	// MaxBodyBytes limits a status report; LogMaxBytes limits one uploaded log file.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	LogMaxBytes  int64 `yaml:"log_max_bytes"`

	// IngestGroups is the number of asynq groups reports are sharded over by a hash of sn.
	// One group drains at most GroupMaxSize reports per aggregation check (about a second).
	IngestGroups int `yaml:"ingest_groups"`
	// IngestQueues is the number of asynq queues reports are sharded over by a hash of sn
	// (1 keeps the one queue "ingest"); the fleet state on Redis is sharded the same way.
	IngestQueues      int           `yaml:"ingest_queues"`
	GroupMaxSize      int           `yaml:"group_max_size"`
	GroupMaxDelay     time.Duration `yaml:"group_max_delay"`
	GroupGracePeriod  time.Duration `yaml:"group_grace_period"`
	WorkerConcurrency int           `yaml:"worker_concurrency"`
	// BatchRetryFor is how long a failing batch keeps being retried before it is archived.
	BatchRetryFor time.Duration `yaml:"batch_retry_for"`

	OfflineAfter time.Duration `yaml:"offline_after"`
	SweepEvery   string        `yaml:"sweep_every"`
	// ForgetAfter is how long a device may stay silent before the sweep decommissions
	// it; 0 never does.
	ForgetAfter     time.Duration `yaml:"forget_after"`
	Timezone        string        `yaml:"timezone"`
	AlertWebhookURL string        `yaml:"alert_webhook_url"`
	// AlertWebhookSecret, when set, signs each webhook POST (X-Monitor-Signature).
	AlertWebhookSecret string `yaml:"alert_webhook_secret"`
	// AlertRepeatEvery re-sends the alerts still firing this long after their last
	// firing notice; 0 (the default) never does.
	AlertRepeatEvery time.Duration `yaml:"alert_repeat_every"`
	// AlertGroupWait holds a notice group's first notice back this long so that alerts of
	// the same status, tenant and city arriving meanwhile join it; 0 sends at the next sweep.
	AlertGroupWait time.Duration `yaml:"alert_group_wait"`
	// AlertGroupInterval is the least time between two notices of one group.
	AlertGroupInterval time.Duration `yaml:"alert_group_interval"`
	LogDir             string        `yaml:"log_dir"`
	LogPullEvery       string        `yaml:"log_pull_every"`
	LogPullSelect      string        `yaml:"log_pull_select"`

	// UnsentThreshold raises an unsent_records alert when a device's latest unum1+unum2
	// exceeds it; 0 turns the alert off.
	UnsentThreshold int64 `yaml:"unsent_threshold"`
	// CommandTTL is how long a command stays open before it expires; CommandSyncEvery is
	// how often deliveries are moved from Redis to the database and commands expire.
	CommandTTL       time.Duration `yaml:"command_ttl"`
	CommandSyncEvery string        `yaml:"command_sync_every"`
	// RetentionEvery schedules the retention job; the *Days keys say how long each kind
	// of record is kept.
	RetentionEvery       string `yaml:"retention_every"`
	RetentionDays        int    `yaml:"retention_days"`
	AlertRetentionDays   int    `yaml:"alert_retention_days"`
	CommandRetentionDays int    `yaml:"command_retention_days"`
	LogRetentionDays     int    `yaml:"log_retention_days"`

	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	LogLevel        string        `yaml:"log_level"`
	// PprofAddr, when set, serves net/http/pprof on its own listener (keep it on loopback):
	// for profiling under load with make bench. Empty (the default) serves nothing.
	PprofAddr string `yaml:"pprof_addr"`
	// MetricsAddr, when set, serves /metrics and /healthz for the worker and scheduler
	// roles, which have no API listener (the API serves /metrics itself).
	MetricsAddr string `yaml:"metrics_addr"`
	// LogFormat is json or text; empty picks json unless stderr is a terminal.
	LogFormat string `yaml:"log_format"`
	// PrometheusURL is the Prometheus server asynqmon's Metrics page reads; empty draws no charts.
	PrometheusURL string `yaml:"prometheus_url"`
	// OTLPEndpoint, when set, exports traces over OTLP/HTTP to this URL; empty turns tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
}

// MaxBodyBytesLimit is the largest MONITOR_MAX_BODY_BYTES accepted.
const MaxBodyBytesLimit = 16 << 20

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "MONITOR_"

// testSwitches are the MONITOR_ variables the tests and benchmarks read; a monitor process
// ignores them without a warning.
var testSwitches = []string{
	"MONITOR_TEST_REAL", "MONITOR_TEST_REDIS_ADDR", "MONITOR_TEST_MYSQL_DSN", "MONITOR_TEST_DOCKER",
	"MONITOR_SCREENSHOT_DIR", "MONITOR_BENCH_EMBEDDED", "MONITOR_CHAOS_REPORT",
}

// EnvWarnings returns one warning for every MONITOR_ variable in environ that this
// version does not read: a typo such as MONITOR_REDIS_ADR would otherwise leave
// monitor quietly on its defaults. The test switches are known and never warned about.
func EnvWarnings(environ []string) []string {
	known := make(map[string]bool)
	for _, name := range envNames() {
		known[name] = true
	}
	for _, name := range testSwitches {
		known[name] = true
	}
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case !strings.HasPrefix(name, EnvPrefix) || known[name]:
		default:
			warnings = append(warnings, name+" is not a monitor setting and is ignored"+suggest(name))
		}
	}
	slices.Sort(warnings)
	return warnings
}

// suggest names the known variable closest to a misspelt one, if any is close.
func suggest(name string) string {
	best, bestDist := "", 4
	for _, known := range envNames() {
		if d := editDistance(name, known); d < bestDist {
			best, bestDist = known, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// envNames returns the environment name of every field of Config.
func envNames() []string {
	rt := reflect.TypeFor[Config]()
	names := make([]string, 0, rt.NumField())
	for i := range rt.NumField() {
		names = append(names, EnvPrefix+strings.ToUpper(rt.Field(i).Tag.Get("yaml")))
	}
	return names
}

// Load reads path (or DefaultFile when path is empty and that file exists), applies the
// MONITOR_… variables from environ, fills defaults and validates the result.
func Load(path string, environ []string) (*Config, error) {
	var c Config
	set := make(map[string]bool) // the yaml keys the file or the environment gave a value
	explicit := path != ""
	path = cmp.Or(path, DefaultFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		// An empty file decodes as io.EOF and counts as an empty config.
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		var keys map[string]yaml.Node
		if err := yaml.Unmarshal(data, &keys); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		for k := range keys {
			set[k] = true
		}
	case explicit || !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config file: %w", err)
	}
	if err := c.applyEnv(environ, set); err != nil {
		return nil, err
	}
	c.fillDefaults(set)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Default returns the configuration with every default filled and no file or environment read.
func Default() *Config {
	var c Config
	c.fillDefaults(nil)
	return &c
}

// fillDefaults gives every key left empty its default. A string key is filled when it is
// empty; a number or duration only when set (keyed by yaml name) does not hold it, so an
// explicit 0 is validated as given instead of silently becoming the default.
func (c *Config) fillDefaults(set map[string]bool) {
	c.HTTPAddr = cmp.Or(c.HTTPAddr, ":8888")
	c.DataDir = cmp.Or(c.DataDir, "./data")
	c.DeviceAuth = cmp.Or(c.DeviceAuth, "off")
	unsetOr(set, "device_rate", &c.DeviceRate, 1)
	unsetOr(set, "redis_shed_share", &c.RedisShedShare, 0.8)
	unsetOr(set, "device_burst", &c.DeviceBurst, 10)
	unsetOr(set, "max_body_bytes", &c.MaxBodyBytes, 64<<10)
	unsetOr(set, "log_max_bytes", &c.LogMaxBytes, 32<<20)
	unsetOr(set, "ingest_groups", &c.IngestGroups, 16)
	unsetOr(set, "ingest_queues", &c.IngestQueues, DefaultIngestQueues)
	if !set["ingest_queues"] && c.RedisCluster != "" {
		c.IngestQueues = DefaultClusterIngestQueues
	}
	unsetOr(set, "group_max_size", &c.GroupMaxSize, 2000)
	unsetOr(set, "group_max_delay", &c.GroupMaxDelay, 2*time.Second)
	unsetOr(set, "group_grace_period", &c.GroupGracePeriod, time.Second)
	unsetOr(set, "worker_concurrency", &c.WorkerConcurrency, 256)
	unsetOr(set, "batch_retry_for", &c.BatchRetryFor, 2*time.Hour)
	unsetOr(set, "offline_after", &c.OfflineAfter, 30*time.Minute)
	c.SweepEvery = cmp.Or(c.SweepEvery, "1m")
	unsetOr(set, "forget_after", &c.ForgetAfter, 720*time.Hour)
	unsetOr(set, "alert_group_wait", &c.AlertGroupWait, 30*time.Second)
	unsetOr(set, "alert_group_interval", &c.AlertGroupInterval, 5*time.Minute)
	c.Timezone = cmp.Or(c.Timezone, "Local")
	c.LogDir = cmp.Or(c.LogDir, "./data/logs")
	c.LogPullSelect = cmp.Or(c.LogPullSelect, "all")
	unsetOr(set, "command_ttl", &c.CommandTTL, 24*time.Hour)
	c.CommandSyncEvery = cmp.Or(c.CommandSyncEvery, "1m")
	c.RetentionEvery = cmp.Or(c.RetentionEvery, "17 3 * * *")
	unsetOr(set, "retention_days", &c.RetentionDays, 90)
	unsetOr(set, "alert_retention_days", &c.AlertRetentionDays, 90)
	unsetOr(set, "command_retention_days", &c.CommandRetentionDays, 30)
	unsetOr(set, "log_retention_days", &c.LogRetentionDays, 30)
	unsetOr(set, "shutdown_timeout", &c.ShutdownTimeout, 25*time.Second)
	c.LogLevel = cmp.Or(c.LogLevel, "info")
}

// unsetOr sets *v to def unless set holds key.
func unsetOr[T any](set map[string]bool, key string, v *T, def T) {
	if !set[key] {
		*v = def
	}
}

// DefaultIngestQueues is MONITOR_INGEST_QUEUES when unset, and DefaultClusterIngestQueues
// when unset with MONITOR_REDIS_CLUSTER. On one Redis every extra queue costs CPU and
// gains nothing; on a cluster the queues are what spreads ingest over the masters, two
// per master of a 3-master cluster. docs/SCALING.md has the measurements.
const (
	DefaultIngestQueues        = 1
	DefaultClusterIngestQueues = 6
)

// Embedded reports whether neither Redis nor MySQL is configured, so both run in-process.
func (c *Config) Embedded() bool { return !c.RedisConfigured() && c.MySQLDSN == "" }

// External reports whether Redis or MySQL is a real server, which makes the operator token mandatory.
func (c *Config) External() bool { return c.RedisConfigured() || c.MySQLDSN != "" }

// RedisConfigured reports whether a real Redis is named: one server, a cluster or a sentinel set.
func (c *Config) RedisConfigured() bool {
	return c.RedisAddr != "" || c.RedisCluster != "" || c.RedisSentinels != ""
}

// RedisClusterAddrs returns the seed addresses of MONITOR_REDIS_CLUSTER; nil when unset.
func (c *Config) RedisClusterAddrs() []string { return splitAddrs(c.RedisCluster) }

// RedisSentinelAddrs returns the addresses of MONITOR_REDIS_SENTINELS; nil when unset.
func (c *Config) RedisSentinelAddrs() []string { return splitAddrs(c.RedisSentinels) }

// splitAddrs splits a comma-separated list of host:port, dropping blanks around each.
func splitAddrs(s string) []string {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// validateRedis checks that at most one way to Redis is named, and that it is complete.
func (c *Config) validateRedis() error {
	n := 0
	for _, v := range []string{c.RedisAddr, c.RedisCluster, c.RedisSentinels} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return bad("redis_cluster", "set only one of MONITOR_REDIS_ADDR, MONITOR_REDIS_CLUSTER and MONITOR_REDIS_SENTINELS")
	}
	// addrs checks the comma-separated host:port list raw of key; empty is fine.
	addrs := func(key, raw string) error {
		list := splitAddrs(raw)
		if raw != "" && len(list) == 0 {
			return bad(key, "%q names no host:port", raw)
		}
		for _, a := range list {
			if _, port, ok := strings.Cut(a, ":"); !ok || port == "" {
				return bad(key, "%q is not host:port", a)
			}
		}
		return nil
	}
	if err := errors.Join(addrs("redis_addr", c.RedisAddr), addrs("redis_cluster", c.RedisCluster),
		addrs("redis_sentinels", c.RedisSentinels)); err != nil {
		return err
	}
	if strings.Contains(c.RedisAddr, ",") {
		return bad("redis_addr", "%q names more than one server: use MONITOR_REDIS_CLUSTER or MONITOR_REDIS_SENTINELS", c.RedisAddr)
	}
	// A cluster has db 0 only.
	if c.RedisCluster != "" && c.RedisDB != 0 {
		return bad("redis_db", "%d: a Redis Cluster has only db 0", c.RedisDB)
	}
	if c.RedisSentinels != "" {
		if c.RedisMaster == "" {
			return bad("redis_master", "is required with MONITOR_REDIS_SENTINELS: the name the sentinels know the master by")
		}
	} else if c.RedisMaster != "" {
		return bad("redis_master", "is set but MONITOR_REDIS_SENTINELS is not")
	}
	return nil
}

// KeyError names the configuration key that holds a bad value.
type KeyError struct {
	Key string // the environment name, e.g. MONITOR_DEVICE_RATE
	Msg string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Msg }

func bad(key, format string, args ...any) error {
	return &KeyError{Key: EnvPrefix + strings.ToUpper(key), Msg: fmt.Sprintf(format, args...)}
}

// Validate returns an error naming the first key whose value cannot work.
func (c *Config) Validate() error {
	if err := c.validateRedis(); err != nil {
		return err
	}
	if c.RedisDB < 0 || c.RedisDB > 15 {
		return bad("redis_db", "%d is not a Redis db index (0-15)", c.RedisDB)
	}
	if c.MySQLDSN != "" && !strings.Contains(c.MySQLDSN, "/") {
		return bad("mysql_dsn", "%q is not a go-sql-driver DSN like root@tcp(127.0.0.1:3306)/monitor?parseTime=true", redactDSN(c.MySQLDSN))
	}
	if c.External() && c.OperatorToken == "" {
		return bad("operator_token", "is required when Redis or MySQL is external")
	}
	if c.OperatorToken != "" && len(c.OperatorToken) < 16 {
		return bad("operator_token", "is too short (at least 16 characters)")
	}
	if c.ReadOnlyToken != "" && (len(c.ReadOnlyToken) < 16 || c.ReadOnlyToken == c.OperatorToken) {
		return bad("readonly_token", "must be at least 16 characters and differ from the operator token")
	}
	switch c.DeviceAuth {
	case "off":
	case "tenant-key":
		keys, err := model.ParseTenantKeys(c.DeviceKeys)
		if err != nil {
			return bad("device_keys", "%v", err)
		}
		if len(keys) == 0 {
			return bad("device_keys", "is empty but MONITOR_DEVICE_AUTH is tenant-key")
		}
	default:
		return bad("device_auth", "%q is not off or tenant-key", c.DeviceAuth)
	}
	if !(c.RedisShedShare > 0 && c.RedisShedShare <= 1) {
		return bad("redis_shed_share", "%v is not a share of maxmemory above 0 and at most 1", c.RedisShedShare)
	}
	if c.DeviceRate <= 0 {
		return bad("device_rate", "%v must be a positive number of reports per second", c.DeviceRate)
	}
	if c.DeviceBurst < 1 {
		return bad("device_burst", "%d must be at least 1", c.DeviceBurst)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > MaxBodyBytesLimit {
		return bad("max_body_bytes", "%d is not between 1024 and %d (a report is a few hundred bytes)", c.MaxBodyBytes, MaxBodyBytesLimit)
	}
	if c.LogMaxBytes < 1 {
		return bad("log_max_bytes", "%d must be positive", c.LogMaxBytes)
	}
	if c.IngestGroups < 1 || c.IngestGroups > 1024 {
		return bad("ingest_groups", "%d is not between 1 and 1024", c.IngestGroups)
	}
	if c.IngestQueues < 1 || c.IngestQueues > task.MaxIngestQueues {
		return bad("ingest_queues", "%d is not between 1 and %d", c.IngestQueues, task.MaxIngestQueues)
	}
	// 4000 rows × 16 columns stays under MySQL's 65535 placeholders per statement.
	if c.GroupMaxSize < 1 || c.GroupMaxSize > 4000 {
		return bad("group_max_size", "%d is not between 1 and 4000", c.GroupMaxSize)
	}
	if c.GroupGracePeriod < time.Second {
		return bad("group_grace_period", "%v is below asynq's minimum of 1s", c.GroupGracePeriod)
	}
	if c.GroupMaxDelay <= 0 {
		return bad("group_max_delay", "%v must be positive", c.GroupMaxDelay)
	}
	if c.WorkerConcurrency < 1 {
		return bad("worker_concurrency", "%d must be at least 1", c.WorkerConcurrency)
	}
	if c.BatchRetryFor < time.Second {
		return bad("batch_retry_for", "%v is below 1s", c.BatchRetryFor)
	}
	if c.OfflineAfter < time.Minute {
		return bad("offline_after", "%v is below 1m", c.OfflineAfter)
	}
	if c.ForgetAfter != 0 && c.ForgetAfter < c.OfflineAfter {
		return bad("forget_after", "%v is below offline_after %v (0 never forgets)", c.ForgetAfter, c.OfflineAfter)
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return bad("timezone", "%q is not a known time zone", c.Timezone)
	}
	if c.AlertWebhookURL != "" {
		u, err := url.Parse(c.AlertWebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("alert_webhook_url", "%q is not an http(s) URL", c.AlertWebhookURL)
		}
	}
	if c.AlertWebhookSecret != "" && strings.TrimSpace(c.AlertWebhookSecret) != c.AlertWebhookSecret {
		return bad("alert_webhook_secret", "has leading or trailing white space (a receiver would compute another signature)")
	}
	if c.AlertRepeatEvery != 0 && c.AlertRepeatEvery < time.Minute {
		return bad("alert_repeat_every", "%v is below 1m (empty or 0 never repeats)", c.AlertRepeatEvery)
	}
	if c.AlertGroupWait < 0 || c.AlertGroupWait > time.Hour {
		return bad("alert_group_wait", "%v is not between 0 and 1h", c.AlertGroupWait)
	}
	if c.AlertGroupInterval < time.Second || c.AlertGroupInterval > 24*time.Hour {
		return bad("alert_group_interval", "%v is not between 1s and 24h", c.AlertGroupInterval)
	}
	for _, k := range []struct{ key, spec string }{
		{"sweep_every", c.SweepEvery}, {"log_pull_every", c.LogPullEvery},
		{"command_sync_every", c.CommandSyncEvery}, {"retention_every", c.RetentionEvery},
	} {
		if k.key == "log_pull_every" && k.spec == "" {
			continue
		}
		if _, err := scheduler.ParseSchedule(k.spec); err != nil {
			return bad(k.key, "%v", err)
		}
	}
	if _, err := model.ParseSelector(c.LogPullSelect); err != nil {
		return bad("log_pull_select", "%v", err)
	}
	if c.UnsentThreshold < 0 {
		return bad("unsent_threshold", "%d is negative (0 turns the alert off)", c.UnsentThreshold)
	}
	if c.CommandTTL < time.Minute {
		return bad("command_ttl", "%v is below 1m", c.CommandTTL)
	}
	for _, k := range []struct {
		key  string
		days int
	}{
		{"retention_days", c.RetentionDays}, {"alert_retention_days", c.AlertRetentionDays},
		{"command_retention_days", c.CommandRetentionDays}, {"log_retention_days", c.LogRetentionDays},
	} {
		if k.days < 1 {
			return bad(k.key, "%d must be at least 1 day", k.days)
		}
	}
	if c.ShutdownTimeout <= 0 {
		return bad("shutdown_timeout", "%v must be positive", c.ShutdownTimeout)
	}
	if c.MetricsAddr != "" {
		if _, port, ok := strings.Cut(c.MetricsAddr, ":"); !ok || port == "" {
			return bad("metrics_addr", "%q is not host:port", c.MetricsAddr)
		}
	}
	if c.PprofAddr != "" {
		if _, port, ok := strings.Cut(c.PprofAddr, ":"); !ok || port == "" {
			return bad("pprof_addr", "%q is not host:port", c.PprofAddr)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "", "json", "text":
	default:
		return bad("log_format", "%q is not json or text", c.LogFormat)
	}
	for _, kv := range [...][2]string{{"prometheus_url", c.PrometheusURL}, {"otlp_endpoint", c.OTLPEndpoint}} {
		key, u := kv[0], kv[1]
		if u == "" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return bad(key, "%q is not an http(s) URL", u)
		}
	}
	return nil
}

// redactDSN keeps a database password out of error messages.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return dsn
	}
	if u, _, ok := strings.Cut(dsn[:at], ":"); ok {
		return u + ":***" + dsn[at:]
	}
	return dsn
}

// applyEnv overrides fields from MONITOR_… variables; a value that does not parse names its variable.
// Each variable present, even empty, is recorded in set by its yaml key.
func (c *Config) applyEnv(environ []string, set map[string]bool) error {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	rv := reflect.ValueOf(c).Elem()
	rt := rv.Type()
	for i := range rt.NumField() {
		tag := rt.Field(i).Tag.Get("yaml")
		name := EnvPrefix + strings.ToUpper(tag)
		raw, ok := env[name]
		if !ok {
			continue
		}
		f := rv.Field(i)
		if _, text := f.Interface().(string); !text && strings.TrimSpace(raw) == "" {
			// An empty number or duration is unset, as an empty text value means its
			// default: MONITOR_FORGET_AFTER= keeps 720h, not 0 (never).
			continue
		}
		set[tag] = true
		switch f.Interface().(type) {
		case string:
			f.SetString(raw)
		case int:
			n, err := strconv.Atoi(strings.TrimSpace(raw))
			if err != nil {
				return &KeyError{Key: name, Msg: fmt.Sprintf("%q is not a whole number", raw)}
			}
			f.SetInt(int64(n))
		case int64:
			n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
			if err != nil {
				return &KeyError{Key: name, Msg: fmt.Sprintf("%q is not a whole number", raw)}
			}
			f.SetInt(n)
		case float64:
			x, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
			if err != nil {
				return &KeyError{Key: name, Msg: fmt.Sprintf("%q is not a number", raw)}
			}
			f.SetFloat(x)
		case time.Duration:
			d, err := time.ParseDuration(strings.TrimSpace(raw))
			if err != nil {
				return &KeyError{Key: name, Msg: fmt.Sprintf("%q is not a duration like 30s or 5m", raw)}
			}
			f.SetInt(int64(d))
		default:
			panic("config: unsupported field type for " + name)
		}
	}
	return nil
}
