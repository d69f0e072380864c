package alert

import (
	"context"
	"fmt"
	"slices"
	"time"

	"monitor/fleet"
	"monitor/model"
)

// offlineRound is what one sweep found about offline devices.
type offlineRound struct {
	// fired and resolved are the device_offline alerts to fire and to resolve.
	fired, resolved []model.Alert
	// silent counts the devices silent past the cutoff; heldBack those of them held
	// back because intake was down during their silence.
	silent, heldBack int
	// held are the devices past the cutoff that raised nothing yet (held back, or not
	// yet in the database), for the next sweep to look at again.
	held []fleet.Seen
	// full is true when the sweep read every silent device and every firing alert
	// (no state of a previous sweep); still are then the devices whose alerts keep
	// firing. returned are the devices of fleet.KeyReturned this sweep handled.
	full     bool
	still    []string
	returned []string
}

// offline decides which device_offline alerts fire and resolve. It reads only what
// changed since the last sweep: the devices whose silence crossed the cutoff since the
// last sweep's cutoff, the devices it held, and the devices whose alerts fire that
// reported since (which the API's accept script moved to fleet.KeyReturned). So its cost
// follows the changes, not the number of silent devices or firing alerts. Without a
// previous sweep's state (first start, Redis lost its data, reseeded, or the clock went
// back) it reads them all once and rebuilds that state.
func (s *Sweeper) offline(ctx context.Context, iv *intakeView, cutoff time.Time, reseeded bool) (offlineRound, error) {
	var r offlineRound
	st, err := s.fleet.SweepState(ctx)
	if err != nil {
		return r, err
	}
	n, err := s.fleet.CountSilent(ctx, cutoff)
	if err != nil {
		return r, err
	}
	r.silent = int(n)
	r.full = reseeded || st.Cutoff.IsZero() || st.Cutoff.After(cutoff)
	var (
		candidates []fleet.Seen
		firing     []model.Alert
	)
	if r.full {
		if candidates, err = s.fleet.SilentSince(ctx, cutoff); err != nil {
			return r, err
		}
		if firing, err = s.firing(ctx, model.AlertOffline); err != nil {
			return r, err
		}
	} else {
		if candidates, err = s.fleet.SilentBetween(ctx, st.Cutoff, cutoff); err != nil {
			return r, err
		}
		// The held devices still silent (one that reported since is not offline).
		heldSNs := make([]string, len(st.Held))
		for i, h := range st.Held {
			heldSNs[i] = h.SN
		}
		seen, err := s.fleet.LastSeen(ctx, heldSNs)
		if err != nil {
			return r, err
		}
		for i, at := range seen {
			if !at.IsZero() && !at.After(cutoff) {
				candidates = append(candidates, fleet.Seen{SN: heldSNs[i], At: at})
			}
		}
		if r.returned, err = s.fleet.Returned(ctx); err != nil {
			return r, err
		}
		sns := make([]string, 0, len(r.returned)+len(candidates))
		sns = append(sns, r.returned...)
		for _, c := range candidates {
			sns = append(sns, c.SN)
		}
		if firing, err = s.firingOf(ctx, model.AlertOffline, sns); err != nil {
			return r, err
		}
	}

	// Resolve the devices seen again since they went silent.
	sns := make([]string, len(firing))
	for i, a := range firing {
		sns[i] = a.SN
	}
	seen, err := s.fleet.LastSeen(ctx, sns)
	if err != nil {
		return r, err
	}
	isFiring := make(map[string]bool, len(firing))
	for i, a := range firing {
		if seen[i].After(cutoff) {
			r.resolved = append(r.resolved, a)
			continue
		}
		isFiring[a.SN] = true
		r.still = append(r.still, a.SN)
	}
	var fresh []fleet.Seen
	for _, d := range candidates {
		switch {
		case isFiring[d.SN]:
		case iv.effective(d.At) < s.opt.OfflineAfter:
			r.heldBack++
			r.held = append(r.held, d)
		default:
			fresh = append(fresh, d)
		}
	}
	var unknown []fleet.Seen
	if r.fired, unknown, err = s.offlineAlerts(ctx, fresh, cutoff.Add(s.opt.OfflineAfter)); err != nil {
		return r, err
	}
	r.held = append(r.held, unknown...)
	return r, nil
}

// offlineDone records the round's outcome on Redis once its alerts are stored: which
// devices' alerts fire (so their next report marks them returned), which returned
// devices were handled, and the cutoff and held devices the next sweep starts from.
func (s *Sweeper) offlineDone(ctx context.Context, r offlineRound, cutoff time.Time) error {
	firing := slices.Clone(r.still)
	for _, a := range r.fired {
		firing = append(firing, a.SN)
	}
	if r.full {
		if err := s.fleet.SetOffline(ctx, firing, cutoff); err != nil {
			return err
		}
	} else {
		if err := s.fleet.ClearReturned(ctx, r.returned); err != nil {
			return err
		}
		if err := s.fleet.MarkOffline(ctx, firing, cutoff); err != nil {
			return err
		}
	}
	return s.fleet.SaveSweepState(ctx, fleet.SweepState{Cutoff: cutoff, Held: r.held})
}

// firingOf returns the firing alerts of kind of the devices sns.
func (s *Sweeper) firingOf(ctx context.Context, kind string, sns []string) ([]model.Alert, error) {
	var out []model.Alert
	for part := range slices.Chunk(sns, rowsPerStatement) {
		keys := make([]string, len(part))
		for i, sn := range part {
			keys[i] = kind + ":" + sn
		}
		var as []model.Alert
		if err := s.db.WithContext(ctx).Where("firing_key IN ?", keys).Order("id").Find(&as).Error; err != nil {
			return nil, fmt.Errorf("read firing %s alerts: %w", kind, err)
		}
		out = append(out, as...)
	}
	return out, nil
}

type place struct {
	SN     string
	Tenant uint32
	City   string
}

// offlineAlerts builds the new offline alerts of devices silent since d.At, with their
// tenant and city. A device the database does not know yet (its reports are still
// queued) is returned in unknown, for a later sweep.
func (s *Sweeper) offlineAlerts(ctx context.Context, silent []fleet.Seen, now time.Time) (out []model.Alert, unknown []fleet.Seen, err error) {
	out = make([]model.Alert, 0, len(silent))
	for part := range slices.Chunk(silent, rowsPerStatement) {
		sns := make([]string, len(part))
		for i, d := range part {
			sns[i] = d.SN
		}
		var places []place
		if err := s.db.WithContext(ctx).Model(&model.Device{}).Select("sn, tenant, city").
			Where("sn IN ?", sns).Scan(&places).Error; err != nil {
			return nil, nil, fmt.Errorf("read silent devices: %w", err)
		}
		at := make(map[string]place, len(places))
		for _, p := range places {
			at[p.SN] = p
		}
		for _, d := range part {
			p, ok := at[d.SN]
			if !ok {
				unknown = append(unknown, d)
				continue
			}
			out = append(out, model.Alert{Kind: model.AlertOffline, SN: d.SN, Tenant: p.Tenant, City: p.City,
				StartsAt: d.At.Add(s.opt.OfflineAfter).UTC().Truncate(time.Microsecond), Value: now.Sub(d.At).Seconds()})
		}
	}
	return out, unknown, nil
}
