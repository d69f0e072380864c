package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"monitor/fleet"
	"monitor/model"
)

var devicesDecommissioned = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "monitor_devices_decommissioned_total",
	Help: "Devices decommissioned, by who: operator (DELETE /api/v1/devices/{sn}) or forget_after (silent past MONITOR_FORGET_AFTER).",
}, []string{"by"})

// DecommissionCollectors returns the decommission metrics, for the processes that
// decommission devices (the API and the workers' sweep) to register.
func DecommissionCollectors() []prometheus.Collector {
	return []prometheus.Collector{devicesDecommissioned}
}

// CommandExpirer expires a device's open commands within a transaction
// (command.Store.ExpireDevice).
type CommandExpirer interface {
	ExpireDevice(ctx context.Context, tx *gorm.DB, sn string) (int64, error)
}

// DecommissionOptions configure a Decommissioner.
type DecommissionOptions struct {
	// Commands expires the device's open commands; required.
	Commands CommandExpirer
	// Logger receives each decommission; nil discards it.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// Decommissioner takes devices out of the fleet for good: the device row and its live
// state go, its firing alerts resolve (marked decommissioned) and its open commands
// expire; its history stays in tb_status until retention. A device that reports again
// afterwards is a new device.
type Decommissioner struct {
	db    *gorm.DB
	fleet *fleet.Fleet
	opt   DecommissionOptions
}

// NewDecommissioner returns a Decommissioner over db and fl.
func NewDecommissioner(db *gorm.DB, fl *fleet.Fleet, opt DecommissionOptions) (*Decommissioner, error) {
	if opt.Commands == nil {
		return nil, errors.New("alert: decommission needs the command store")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Decommissioner{db: db, fleet: fl, opt: opt}, nil
}

// Decommission decommissions sn on behalf of by (ByOperator or model.DecommissionedByForgetAfter), and
// returns model.ErrUnknownDevice when neither the database nor the fleet state knows it.
//
// Everything in the database happens in one transaction, the resolved notices in the
// outbox with the alerts they resolve (a sweep without a webhook drops them); the live
// state on Redis goes after the commit. Repeating the call after a failure finishes the
// work.
func (d *Decommissioner) Decommission(ctx context.Context, sn, by string) error {
	now := d.opt.Now().UTC().Truncate(time.Microsecond)
	var resolved []uint64
	var expired int64
	var known bool
	err := d.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("sn = ?", sn).Delete(&model.Device{})
		if res.Error != nil {
			return fmt.Errorf("delete device %s: %w", sn, res.Error)
		}
		row := res.RowsAffected > 0
		if err := tx.Model(&model.Alert{}).Where("sn = ? AND state = ?", sn, model.AlertFiring).Order("id").
			Pluck("id", &resolved).Error; err != nil {
			return fmt.Errorf("read firing alerts of %s: %w", sn, err)
		}
		if len(resolved) > 0 {
			if err := tx.Model(&model.Alert{}).Where("id IN ?", resolved).Updates(map[string]any{
				"state": model.AlertResolved, "ends_at": now, "firing_key": nil, "decommissioned": true,
			}).Error; err != nil {
				return fmt.Errorf("resolve alerts of %s: %w", sn, err)
			}
		}
		var err error
		if expired, err = d.opt.Commands.ExpireDevice(ctx, tx, sn); err != nil {
			return err
		}
		known = row || len(resolved) > 0 || expired > 0
		return recordNotices(tx, nil, resolved, now)
	})
	if err != nil {
		return err
	}
	// The live state goes after the commit: a failed commit leaves it, so the device is
	// still found (by the sweep's forgetting too) and a repeat does the work; a failed
	// Forget leaves the device in the live state only, where a repeat finds it.
	seen, err := d.fleet.Forget(ctx, sn)
	if err != nil {
		return err
	}
	if !known && !seen {
		return model.ErrUnknownDevice
	}
	devicesDecommissioned.WithLabelValues(by).Inc()
	d.opt.Logger.Info("device decommissioned", "sn", sn, "by", by, "alerts_resolved", len(resolved), "commands_expired", expired)
	return nil
}

// forgetPerSweep bounds the devices one sweep decommissions, each one transaction, so
// that turning MONITOR_FORGET_AFTER on over a fleet with many long-gone devices spreads
// their decommissioning over several sweeps instead of making one sweep run for minutes.
const forgetPerSweep = 500

// forget decommissions the devices silent for Options.ForgetAfter or longer (at most
// forgetPerSweep, the longest silent first), one by one, and returns how many it
// decommissioned. Only what crossed the threshold is read: the ones forgotten earlier
// left the last-seen set. Nothing is forgotten while intake is down or unknown, when
// silence says nothing about the devices.
func (s *Sweeper) forget(ctx context.Context, iv *intakeView, now time.Time) (int, error) {
	if s.opt.ForgetAfter <= 0 || iv.down || !iv.known {
		return 0, nil
	}
	gone, err := s.fleet.SilentLongest(ctx, now.Add(-s.opt.ForgetAfter), forgetPerSweep)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range gone {
		err := s.opt.Decommissioner.Decommission(ctx, d.SN, model.DecommissionedByForgetAfter)
		switch {
		case errors.Is(err, model.ErrUnknownDevice):
			continue // decommissioned meanwhile
		case err != nil:
			return n, err
		}
		n++
	}
	return n, nil
}
