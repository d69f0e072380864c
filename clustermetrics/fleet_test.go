package clustermetrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"monitor/internal/testenv"
	"monitor/model"
)

// TestFleetCollectorCountsByTenantKindAndState: devices split by tenant into online and
// offline at MONITOR_OFFLINE_AFTER, only firing alerts by kind, commands by state, and
// every kind and state present at 0.
func TestFleetCollectorCountsByTenantKindAndState(t *testing.T) {
	db := testenv.NewDB(t).DB
	now := time.Now().UTC()
	for _, d := range []model.Device{
		{SN: "A1", Tenant: 0, LastSeen: now.Add(-time.Minute)},
		{SN: "A2", Tenant: 0, LastSeen: now.Add(-2 * time.Hour)},
		{SN: "B1", Tenant: 7, LastSeen: now.Add(-10 * time.Minute)},
		{SN: "B2", Tenant: 7, LastSeen: now.Add(-20 * time.Minute)},
		{SN: "B3", Tenant: 7, LastSeen: now.Add(-31 * time.Minute)},
	} {
		d.FirstSeen = d.LastSeen
		if err := db.Create(&d).Error; err != nil {
			t.Fatal(err)
		}
	}
	k1, k2 := "k1", "k2"
	end := now
	for _, a := range []model.Alert{
		{Kind: model.AlertOffline, SN: "A2", State: model.AlertFiring, StartsAt: now, FiringKey: &k1},
		{Kind: model.AlertUnsent, SN: "B1", State: model.AlertFiring, StartsAt: now, FiringKey: &k2},
		{Kind: model.AlertOffline, SN: "B3", State: model.AlertResolved, StartsAt: now, EndsAt: &end},
	} {
		if err := db.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
	}
	for _, state := range []string{model.CommandDone, model.CommandDone, model.CommandExpired} {
		if err := db.Create(&model.Command{SN: "A1", Type: model.CommandUploadLogs, State: state, CreatedAt: now, ExpiresAt: now}).Error; err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewFleetCollector(db, FleetOptions{OfflineAfter: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP monitor_devices Devices by tenant and state (online: a report accepted within MONITOR_OFFLINE_AFTER), from the database.
# TYPE monitor_devices gauge
monitor_devices{state="offline",tenant="0"} 1
monitor_devices{state="offline",tenant="7"} 1
monitor_devices{state="online",tenant="0"} 1
monitor_devices{state="online",tenant="7"} 2
# HELP monitor_alerts_firing Alerts firing, by kind, from the database.
# TYPE monitor_alerts_firing gauge
monitor_alerts_firing{kind="device_offline"} 1
monitor_alerts_firing{kind="intake_down"} 0
monitor_alerts_firing{kind="unsent_records"} 1
# HELP monitor_commands Commands to terminals by state, from the database.
# TYPE monitor_commands gauge
monitor_commands{state="delivered"} 0
monitor_commands{state="done"} 2
monitor_commands{state="expired"} 1
monitor_commands{state="pending"} 0
# HELP monitor_fleet_read_up 1 when the last read of the fleet from the database succeeded.
# TYPE monitor_fleet_read_up gauge
monitor_fleet_read_up 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
