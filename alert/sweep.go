// Package alert raises and resolves alerts and pushes them to the webhook.
//
// The offline sweep reads last-seen times from Redis (written by the API when it accepts
// a report), never from tb_status, so a paused worker or a database outage cannot make
// devices look silent. A device never seen is not in the set, so it is never offline.
//
// A device is called offline only for silence while intake was working: the API counts
// the reports it accepts per 5 s on Redis, and the sweep counts, of each silent device's
// silence, only the time during which intake was neither down nor degraded (intake.go
// defines both). A device fires when that effective silence reaches offline_after. So an
// outage of our API, a forward clock jump of the sweep's host, or Redis losing its data
// (the counts go with it) makes no device offline; once intake works again, a device that
// stays silent fires after offline_after of working intake. An outage is itself an
// alert: intake_down, with empty sn, tenant and city.
//
// Resolutions are never held back, and alerts already firing stay firing, so a restart
// or a clock jump neither flips the fleet offline nor silently clears real alerts.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"monitor/fleet"
	"monitor/model"
)

// rowsPerStatement bounds the rows or ids of one statement.
const rowsPerStatement = 1000

// maxAlertsPerNotification splits a huge group into several bodies of bounded size.
const maxAlertsPerNotification = 1000

// Options are the sweep's settings.
type Options struct {
	// OfflineAfter is MONITOR_OFFLINE_AFTER; at least a minute.
	OfflineAfter time.Duration
	// UnsentThreshold raises unsent_records above it; 0 is off.
	UnsentThreshold int64
	// Notify enables pushes: false when no webhook URL is configured.
	Notify bool
	// RepeatEvery is MONITOR_ALERT_REPEAT_EVERY: with Notify, an alert still firing this
	// long after its last firing notice is sent again, grouped like new ones. 0 never
	// repeats.
	RepeatEvery time.Duration
	// GroupWait is MONITOR_ALERT_GROUP_WAIT: the first notice of a group (status, tenant,
	// city) waits this long after its first alert, so alerts arriving meanwhile join it.
	GroupWait time.Duration
	// GroupInterval is MONITOR_ALERT_GROUP_INTERVAL: a group sends at most one notice per
	// interval; alerts arriving meanwhile wait for the next.
	GroupInterval time.Duration
	// ForgetAfter is MONITOR_FORGET_AFTER: a device silent this long is decommissioned by
	// Decommissioner (required then). 0 never forgets.
	ForgetAfter    time.Duration
	Decommissioner *Decommissioner
	// Logger receives what each sweep did; nil discards it.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// Sweeper is the periodic offline sweep and the unsent-records check.
type Sweeper struct {
	db       *gorm.DB
	fleet    *fleet.Fleet
	enqueuer *asynq.Client
	opt      Options
	log      *slog.Logger

	mu   sync.Mutex
	held string // the last sweep's Result.Held, to log only its changes
}

// NewSweeper returns a Sweeper that reads last-seen times from fl, stores alerts in db
// and enqueues their notifications with enqueuer.
func NewSweeper(db *gorm.DB, fl *fleet.Fleet, enqueuer *asynq.Client, opt Options) (*Sweeper, error) {
	if opt.OfflineAfter < time.Minute {
		return nil, fmt.Errorf("alert: offline after %v is below 1m", opt.OfflineAfter)
	}
	if opt.UnsentThreshold < 0 {
		return nil, fmt.Errorf("alert: unsent threshold %d is negative", opt.UnsentThreshold)
	}
	if opt.RepeatEvery < 0 {
		return nil, fmt.Errorf("alert: repeat every %v is negative", opt.RepeatEvery)
	}
	if opt.GroupWait < 0 || opt.GroupInterval < 0 {
		return nil, fmt.Errorf("alert: group wait %v or group interval %v is negative", opt.GroupWait, opt.GroupInterval)
	}
	if opt.ForgetAfter < 0 || opt.ForgetAfter > 0 && opt.ForgetAfter < opt.OfflineAfter {
		return nil, fmt.Errorf("alert: forget after %v is negative or below offline after %v", opt.ForgetAfter, opt.OfflineAfter)
	}
	if opt.ForgetAfter > 0 && opt.Decommissioner == nil {
		return nil, errors.New("alert: forget after needs a decommissioner")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Sweeper{db: db, fleet: fl, enqueuer: enqueuer, opt: opt, log: opt.Logger}, nil
}

// Result says what one sweep did.
type Result struct {
	Silent, Fired, Resolved, Notifications int
	// Repeated counts the firing alerts sent again (Options.RepeatEvery).
	Repeated int
	// Held says why new offline alerts were held back, when some were: silent devices
	// whose silence while intake worked is still under offline_after (see intake.go).
	Held string
	// HeldDevices counts them.
	HeldDevices int
	// Forgotten counts the devices decommissioned for silence (Options.ForgetAfter).
	Forgotten int
}

// ProcessTask is the asynq handler of task.TypeSweep.
func (s *Sweeper) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	r, err := s.Sweep(ctx)
	if err != nil {
		return err
	}
	// Say when holding back starts and when it ends, not at every sweep (its reason may
	// change meanwhile: Result.Held has the current one).
	s.mu.Lock()
	prev := s.held
	s.held = r.Held
	s.mu.Unlock()
	switch {
	case r.Held != "" && prev == "":
		s.log.WarnContext(ctx, "offline alerts held back", "reason", r.Held, "held", r.HeldDevices)
	case r.Held == "" && prev != "":
		s.log.InfoContext(ctx, "offline alerts no longer held back")
	}
	if r.Fired+r.Resolved+r.Repeated+r.Forgotten > 0 {
		s.log.InfoContext(ctx, "sweep", "fired", r.Fired, "resolved", r.Resolved, "repeated", r.Repeated, "forgotten", r.Forgotten,
			"notifications", r.Notifications)
	}
	return nil
}

// Sweep raises and resolves offline and unsent-records alerts once.
func (s *Sweeper) Sweep(ctx context.Context) (Result, error) {
	var res Result
	now := s.opt.Now().UTC().Truncate(time.Microsecond)
	w, err := s.fleet.Watch(ctx)
	if err != nil {
		return res, err
	}
	if !w.Seeded || !w.TenantsSeeded {
		// When Redis lost its data (or on the first start) the intake activity is gone
		// with it, so no silence counts until intake has worked offline_after again.
		if err := s.seed(ctx, now, !w.Seeded, !w.TenantsSeeded); err != nil {
			return res, err
		}
	}
	counts, err := s.fleet.Intake(ctx, now.Add(-intakeHorizon(s.opt.OfflineAfter)))
	if err != nil {
		return res, err
	}
	iv := newIntakeView(counts, now.Add(-intakeHorizon(s.opt.OfflineAfter)), now, s.opt.OfflineAfter)
	if res.Forgotten, err = s.forget(ctx, iv, now); err != nil {
		return res, err
	}
	cutoff := now.Add(-s.opt.OfflineAfter)
	round, err := s.offline(ctx, iv, cutoff, !w.Seeded)
	if err != nil {
		return res, err
	}
	res.Silent = round.silent
	fired, resolved := round.fired, round.resolved
	if held := round.heldBack; held > 0 {
		res.HeldDevices = held
		res.Held = "intake was down or degraded during their silence"
		switch {
		case iv.down:
			res.Held = "intake is down or degraded now"
		case !iv.known:
			res.Held = "intake is down, or too little intake activity is recorded to judge (first start, or Redis lost its data)"
		}
	}
	idf, idr, err := s.intakeDown(ctx, iv, now)
	if err != nil {
		return res, err
	}
	fired, resolved = append(fired, idf...), append(resolved, idr...)
	uf, ur, err := s.unsent(ctx, now)
	if err != nil {
		return res, err
	}
	fired, resolved = append(fired, uf...), append(resolved, ur...)

	if fired, err = s.store(ctx, fired, resolved, now); err != nil {
		return res, err
	}
	if err := s.offlineDone(ctx, round, cutoff); err != nil {
		return res, err
	}
	res.Fired, res.Resolved = len(fired), len(resolved)
	if !s.opt.Notify {
		// No webhook: the notices a decommission recorded have nowhere to go.
		if err := s.db.WithContext(ctx).Where("1 = 1").Delete(&model.AlertNotice{}).Error; err != nil {
			return res, fmt.Errorf("drop alert notices: %w", err)
		}
		return res, nil
	}
	// Read after store: the alerts resolved just now are no longer firing, and those
	// fired just now were notified now.
	repeats, err := s.due(ctx, now)
	if err != nil {
		return res, err
	}
	// The notices of what was fired and resolved come from the outbox, with those an
	// earlier sweep stored but could not hand on, and those of decommissions.
	outFiring, outResolved, noticeIDs, err := s.outbox(ctx)
	if err != nil {
		return res, err
	}
	n, err := s.notify(ctx, slices.Concat(outFiring, repeats), outResolved, now)
	res.Notifications = n
	if pendingSaved(err) {
		if serr := s.sent(ctx, noticeIDs); serr != nil {
			return res, errors.Join(err, serr)
		}
	}
	if err != nil {
		return res, err
	}
	if err := s.notified(ctx, repeats, now); err != nil {
		return res, err
	}
	res.Repeated = len(repeats)
	return res, nil
}

// due returns the firing alerts whose last firing notice is Options.RepeatEvery old or
// older, or that never had one; none when RepeatEvery is 0.
func (s *Sweeper) due(ctx context.Context, now time.Time) ([]model.Alert, error) {
	if s.opt.RepeatEvery <= 0 {
		return nil, nil
	}
	var as []model.Alert
	if err := s.db.WithContext(ctx).Where("state = ? AND (notified_at IS NULL OR notified_at <= ?)",
		model.AlertFiring, now.Add(-s.opt.RepeatEvery)).Order("id").Find(&as).Error; err != nil {
		return nil, fmt.Errorf("read alerts to repeat: %w", err)
	}
	return as, nil
}

// notified records that the firing notices of as were enqueued at now.
func (s *Sweeper) notified(ctx context.Context, as []model.Alert, now time.Time) error {
	ids := make([]uint64, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	for part := range slices.Chunk(ids, rowsPerStatement) {
		if err := s.db.WithContext(ctx).Model(&model.Alert{}).Where("id IN ? AND state = ?", part, model.AlertFiring).
			Update("notified_at", now).Error; err != nil {
			return fmt.Errorf("record repeated notices: %w", err)
		}
	}
	return nil
}

// seed fills what Redis lost (or never had) from the devices table: with lastSeen the
// last-seen set from devices.last_seen (newer times already on Redis win), with tenants
// the sn→tenant bindings from devices.tenant (the database wins: only operators move a
// device, and the batch writer never changes devices.tenant).
func (s *Sweeper) seed(ctx context.Context, now time.Time, lastSeen, tenants bool) error {
	var (
		all   []fleet.Seen
		bound []fleet.Bound
	)
	after := ""
	for {
		var rows []struct {
			SN       string
			Tenant   uint32
			LastSeen time.Time
		}
		if err := s.db.WithContext(ctx).Model(&model.Device{}).Select("sn, tenant, last_seen").
			Where("sn > ?", after).Order("sn").Limit(5000).Scan(&rows).Error; err != nil {
			return fmt.Errorf("read devices to seed the fleet state: %w", err)
		}
		for _, r := range rows {
			all = append(all, fleet.Seen{SN: r.SN, At: r.LastSeen})
			bound = append(bound, fleet.Bound{SN: r.SN, Tenant: r.Tenant})
		}
		if len(rows) < 5000 {
			break
		}
		after = rows[len(rows)-1].SN
	}
	if tenants {
		if err := s.fleet.SeedTenants(ctx, bound); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "seeded device tenants from the database", "devices", len(bound))
	}
	if lastSeen {
		if err := s.fleet.Seed(ctx, all); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "seeded last-seen times from the database; new offline alerts wait one offline_after", "devices", len(all))
	}
	return nil
}

// intakeDown returns the intake_down alert to fire (intake is down or degraded now and
// none fires) or to resolve (it fires and intake works). With too little activity to
// judge, a firing one stays firing.
func (s *Sweeper) intakeDown(ctx context.Context, iv *intakeView, now time.Time) (fired, resolved []model.Alert, err error) {
	firing, err := s.firing(ctx, model.AlertIntakeDown)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case iv.down && len(firing) == 0:
		fired = append(fired, model.Alert{Kind: model.AlertIntakeDown, StartsAt: iv.since,
			Value: now.Sub(iv.since).Seconds()})
	case iv.known && !iv.down:
		resolved = firing
	}
	return fired, resolved, nil
}

// firing returns the firing alerts of kind.
func (s *Sweeper) firing(ctx context.Context, kind string) ([]model.Alert, error) {
	var as []model.Alert
	if err := s.db.WithContext(ctx).Where("kind = ? AND state = ?", kind, model.AlertFiring).
		Order("id").Find(&as).Error; err != nil {
		return nil, fmt.Errorf("read firing %s alerts: %w", kind, err)
	}
	return as, nil
}

// unsent returns the unsent-records alerts to fire and to resolve: a device fires when
// its latest report's unum1+unum2 is over the threshold, and resolves when it is not
// (or when the check is turned off).
func (s *Sweeper) unsent(ctx context.Context, now time.Time) (fired, resolved []model.Alert, err error) {
	firing, err := s.firing(ctx, model.AlertUnsent)
	if err != nil {
		return nil, nil, err
	}
	over := map[string]bool{}
	if s.opt.UnsentThreshold > 0 {
		var rows []struct {
			SN     string
			Tenant uint32
			City   string
			Total  int64
		}
		if err := s.db.WithContext(ctx).Model(&model.Device{}).Select("sn, tenant, city, unum1 + unum2 AS total").
			Where("unum1 + unum2 > ?", s.opt.UnsentThreshold).Scan(&rows).Error; err != nil {
			return nil, nil, fmt.Errorf("read unsent records: %w", err)
		}
		isFiring := make(map[string]bool, len(firing))
		for _, a := range firing {
			isFiring[a.SN] = true
		}
		for _, r := range rows {
			over[r.SN] = true
			if !isFiring[r.SN] {
				fired = append(fired, model.Alert{Kind: model.AlertUnsent, SN: r.SN, Tenant: r.Tenant, City: r.City,
					StartsAt: now, Value: float64(r.Total)})
			}
		}
	}
	for _, a := range firing {
		if !over[a.SN] {
			resolved = append(resolved, a)
		}
	}
	return fired, resolved, nil
}

// store inserts the fired alerts (the unique firing key drops any that already fire)
// and resolves the others. It returns the fired alerts that this call inserted, each
// with its row id read back from the database: the id an insert that skipped a
// conflicting row reports is not to be trusted, and the id is the notices' seq.
func (s *Sweeper) store(ctx context.Context, fired, resolved []model.Alert, now time.Time) (ours []model.Alert, err error) {
	// One transaction with the outbox: an alert change is stored with its notice or not at all.
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ours, err = s.storeIn(tx, fired, resolved, now)
		return err
	})
	return ours, err
}

func (s *Sweeper) storeIn(tx *gorm.DB, fired, resolved []model.Alert, now time.Time) ([]model.Alert, error) {
	for i := range fired {
		key := fired[i].Kind + ":" + fired[i].SN
		fired[i].State, fired[i].FiringKey = model.AlertFiring, &key
		if s.opt.Notify {
			fired[i].NotifiedAt = &now
		}
	}
	if len(fired) > 0 {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
			CreateInBatches(&fired, rowsPerStatement).Error; err != nil {
			return nil, fmt.Errorf("insert alerts: %w", err)
		}
	}
	ours := make([]model.Alert, 0, len(fired))
	for part := range slices.Chunk(fired, rowsPerStatement) {
		keys := make([]string, len(part))
		for i, a := range part {
			keys[i] = *a.FiringKey
		}
		var rows []struct {
			ID        uint64
			FiringKey string
			StartsAt  time.Time
		}
		if err := tx.Model(&model.Alert{}).Select("id, firing_key, starts_at").
			Where("firing_key IN ?", keys).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("read inserted alerts: %w", err)
		}
		byKey := make(map[string]int, len(rows))
		for i, r := range rows {
			byKey[r.FiringKey] = i
		}
		for _, a := range part {
			i, ok := byKey[*a.FiringKey]
			// Another sweep's alert for the device and kind fires: that sweep notifies it.
			if !ok || !rows[i].StartsAt.Equal(a.StartsAt) {
				continue
			}
			a.ID = rows[i].ID
			ours = append(ours, a)
		}
	}
	ids := make([]uint64, len(resolved))
	for i := range resolved {
		ids[i] = resolved[i].ID
		resolved[i].State, resolved[i].EndsAt = model.AlertResolved, &now
	}
	for part := range slices.Chunk(ids, rowsPerStatement) {
		if err := tx.Model(&model.Alert{}).Where("id IN ? AND state = ?", part, model.AlertFiring).
			Updates(map[string]any{"state": model.AlertResolved, "ends_at": now, "firing_key": nil}).Error; err != nil {
			return nil, fmt.Errorf("resolve alerts: %w", err)
		}
	}
	if s.opt.Notify {
		if err := recordNotices(tx, ours, ids, now); err != nil {
			return nil, err
		}
	}
	return ours, nil
}

// NotificationVersion is the version of the webhook body's shape.
const NotificationVersion = "1"

// Notification is the webhook body: one status and the alerts of one tenant and city,
// modelled on Alertmanager's webhook payload.
//
// Retries can deliver notices out of order. A receiver orders them per alert: for one
// kind and sn, the alert with the higher Seq is the later episode; within one episode
// (one ID, one Seq) resolved is final, so a firing notice arriving after its resolved
// one changes nothing.
type Notification struct {
	// Version is NotificationVersion.
	Version string `json:"version"`
	// GroupKey names the group: the same for every notice of one tenant and city.
	GroupKey    string      `json:"groupKey"`
	Status      string      `json:"status"`
	GroupLabels GroupLabels `json:"groupLabels"`
	// Timestamp is when the sweep built the notice: a retried delivery keeps it.
	Timestamp time.Time    `json:"timestamp"`
	Alerts    []AlertEntry `json:"alerts"`
}

// GroupLabels are what the alerts of one notification share.
type GroupLabels struct {
	Tenant uint32 `json:"tenant"`
	City   string `json:"city"`
}

// AlertEntry is one alert in a notification.
type AlertEntry struct {
	// ID is model.Alert.Fingerprint: the same in an episode's firing and resolved
	// notices, different for the next episode of the same device and kind.
	ID string `json:"id"`
	// Seq grows with each episode of one device and kind (it is the alert's row id).
	Seq      uint64     `json:"seq"`
	Status   string     `json:"status"`
	Kind     string     `json:"kind"`
	SN       string     `json:"sn"`
	Tenant   uint32     `json:"tenant"`
	City     string     `json:"city"`
	StartsAt time.Time  `json:"startsAt"`
	EndsAt   *time.Time `json:"endsAt,omitempty"`
	Value    float64    `json:"value"`
	// Decommissioned is true on a resolved notice of an alert that resolved because its
	// device was decommissioned, not because it recovered.
	Decommissioned bool `json:"decommissioned,omitempty"`
}

// groupKey is the GroupKey of the notices of tenant and city.
func groupKey(tenant uint32, city string) string {
	return fmt.Sprintf("{}:{city=%q,tenant=\"%d\"}", city, tenant)
}
