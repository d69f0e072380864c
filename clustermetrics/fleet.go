package clustermetrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"monitor/model"
)

// FleetOptions configures NewFleetCollector.
type FleetOptions struct {
	// OfflineAfter is the silence after which a device counts as offline, as on the
	// operator API (devices.last_seen); required.
	OfflineAfter time.Duration
	// MaxAge is how long one read of the database serves scrapes (default 30s); Timeout
	// bounds the read (default 5s).
	MaxAge, Timeout time.Duration
	// Logger hears about failed reads; nil discards them.
	Logger *slog.Logger
}

func (o FleetOptions) withDefaults() (FleetOptions, error) {
	o.MaxAge = cmp.Or(o.MaxAge, 30*time.Second)
	o.Timeout = cmp.Or(o.Timeout, 5*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OfflineAfter <= 0 || o.MaxAge < 0 || o.Timeout <= 0 {
		return o, fmt.Errorf("clustermetrics: offline after %v, max age %v, timeout %v", o.OfflineAfter, o.MaxAge, o.Timeout)
	}
	return o, nil
}

var (
	descDevices = prometheus.NewDesc("monitor_devices",
		"Devices by tenant and state (online: a report accepted within MONITOR_OFFLINE_AFTER), from the database.",
		[]string{"tenant", "state"}, nil)
	descAlerts = prometheus.NewDesc("monitor_alerts_firing",
		"Alerts firing, by kind, from the database.", []string{"kind"}, nil)
	descCommands = prometheus.NewDesc("monitor_commands",
		"Commands to terminals by state, from the database.", []string{"state"}, nil)
	descFleetUp = prometheus.NewDesc("monitor_fleet_read_up",
		"1 when the last read of the fleet from the database succeeded.", nil, nil)
)

// alertKinds and commandStates are exported even at 0, so a rule sees a value, not nothing.
var (
	alertKinds    = []string{model.AlertOffline, model.AlertIntakeDown, model.AlertUnsent}
	commandStates = []string{model.CommandPending, model.CommandDelivered, model.CommandDone, model.CommandExpired}
)

// fleetSnapshot is one read of the fleet.
type fleetSnapshot struct {
	devices  []tenantDevices
	alerts   map[string]int64
	commands map[string]int64
}

type tenantDevices struct {
	Tenant          uint32
	Online, Offline int64
}

// FleetCollector is a prometheus.Collector of the fleet's state in the database:
// devices online and offline by tenant, alerts firing by kind, commands by state. Its
// labels are bounded by the tenants, alert kinds and command states, never a device or
// a city. Like QueueCollector it serves the cluster's values, cached for MaxAge.
type FleetCollector struct {
	db    *gorm.DB
	opt   FleetOptions
	cache cached[fleetSnapshot]
}

// NewFleetCollector returns a FleetCollector reading db.
func NewFleetCollector(db *gorm.DB, o FleetOptions) (*FleetCollector, error) {
	opt, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if db == nil {
		return nil, errors.New("clustermetrics: no database")
	}
	return &FleetCollector{db: db, opt: opt}, nil
}

// Describe sends the descriptors of every metric the FleetCollector exports.
func (c *FleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDevices, descAlerts, descCommands, descFleetUp} {
		ch <- d
	}
}

// Collect sends the metrics of the newest read, reading again when it is older than MaxAge.
func (c *FleetCollector) Collect(ch chan<- prometheus.Metric) {
	snap, err := c.cache.get(c.opt.MaxAge, c.opt.Timeout, c.read, c.opt.Logger, "the fleet's metrics from the database")
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descFleetUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descFleetUp, prometheus.GaugeValue, 1)
	for _, d := range snap.devices {
		tenant := strconv.FormatUint(uint64(d.Tenant), 10)
		ch <- prometheus.MustNewConstMetric(descDevices, prometheus.GaugeValue, float64(d.Online), tenant, "online")
		ch <- prometheus.MustNewConstMetric(descDevices, prometheus.GaugeValue, float64(d.Offline), tenant, "offline")
	}
	for _, k := range alertKinds {
		ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.GaugeValue, float64(snap.alerts[k]), k)
	}
	for _, s := range commandStates {
		ch <- prometheus.MustNewConstMetric(descCommands, prometheus.GaugeValue, float64(snap.commands[s]), s)
	}
}

// read runs the three grouped counts.
func (c *FleetCollector) read(ctx context.Context) (fleetSnapshot, error) {
	var snap fleetSnapshot
	db := c.db.WithContext(ctx)
	cutoff := time.Now().UTC().Add(-c.opt.OfflineAfter)
	if err := db.Model(&model.Device{}).
		Select("tenant, SUM(CASE WHEN last_seen >= ? THEN 1 ELSE 0 END) AS online, SUM(CASE WHEN last_seen < ? THEN 1 ELSE 0 END) AS offline", cutoff, cutoff).
		Group("tenant").Order("tenant").Scan(&snap.devices).Error; err != nil {
		return snap, fmt.Errorf("count devices: %w", err)
	}
	var err error
	if snap.alerts, err = countBy(db.Model(&model.Alert{}).Where("state = ?", model.AlertFiring), "kind"); err != nil {
		return snap, fmt.Errorf("count firing alerts: %w", err)
	}
	if snap.commands, err = countBy(db.Model(&model.Command{}), "state"); err != nil {
		return snap, fmt.Errorf("count commands: %w", err)
	}
	return snap, nil
}

// countBy counts the rows of q by column.
func countBy(q *gorm.DB, column string) (map[string]int64, error) {
	var rows []struct {
		Key string
		N   int64
	}
	if err := q.Select(column + " AS `key`, COUNT(*) AS n").Group(column).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Key] = r.N
	}
	return out, nil
}
