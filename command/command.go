// Package command keeps the commands that monitor sends to terminals in the replies to
// their reports: the database holds each command and its lifecycle, Redis holds the one
// open command per device so that the report path needs a single Redis round trip.
package command

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"monitor/fleet"
	"monitor/model"
)

// ErrNotOpen means the command does not exist, belongs to another device, or is done or expired.
var ErrNotOpen = errors.New("no such open command for this device")

// Origins of a command.
const (
	OriginOperator = "operator"
	OriginLogPull  = "log_pull"
)

// rowsPerStatement bounds the rows of one bulk statement.
const rowsPerStatement = 500

// Store creates, completes, syncs and expires commands.
type Store struct {
	db    *gorm.DB
	fleet *fleet.Fleet
	ttl   time.Duration
	log   *slog.Logger
	clock func() time.Time
}

// Options configures a Store.
type Options struct {
	// TTL is how long a command stays open before it expires; default 24h, at least 1m.
	TTL time.Duration
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// New returns a Store of the commands in db whose open ones the replies to reports
// carry through fl.
func New(db *gorm.DB, fl *fleet.Fleet, opt Options) (*Store, error) {
	opt.TTL = cmp.Or(opt.TTL, 24*time.Hour)
	if opt.TTL < time.Minute {
		return nil, fmt.Errorf("command: ttl %v is below 1m", opt.TTL)
	}
	if db == nil || fl == nil {
		return nil, errors.New("command: no database or fleet")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Store{db: db, fleet: fl, ttl: opt.TTL, log: opt.Logger, clock: opt.Now}, nil
}

func openKey(sn, typ string) string { return sn + ":" + typ }

func (s *Store) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// Create opens a command of type typ for sn, or returns the device's open one of that
// type with created false. The reply to the device's next report carries it.
func (s *Store) Create(ctx context.Context, sn, typ, origin string) (cmd model.Command, created bool, err error) {
	now := s.now()
	key := openKey(sn, typ)
	cmd = model.Command{SN: sn, Type: typ, State: model.CommandPending, Origin: origin,
		CreatedAt: now, ExpiresAt: now.Add(s.ttl), OpenKey: &key}
	n, err := s.insert(ctx, []model.Command{cmd})
	if err != nil {
		return cmd, false, err
	}
	created = n == 1
	if err := s.db.WithContext(ctx).Where("open_key = ?", key).Take(&cmd).Error; err != nil {
		return cmd, false, fmt.Errorf("read open command: %w", err)
	}
	if err := s.fleet.SetOpen(ctx, map[string]uint64{sn: cmd.ID}); err != nil {
		// The command is stored; the next sync puts it on Redis.
		s.log.WarnContext(ctx, "command stored but not yet on redis; the next sync delivers it", "sn", sn, "id", cmd.ID, "err", err)
	}
	return cmd, created, nil
}

// Check returns ErrNotOpen unless id is sn's open command.
func (s *Store) Check(ctx context.Context, sn string, id uint64) error {
	var n int64
	err := s.db.WithContext(ctx).Model(&model.Command{}).
		Where("id = ? AND sn = ? AND open_key IS NOT NULL", id, sn).Count(&n).Error
	if err != nil {
		return fmt.Errorf("read command: %w", err)
	}
	if n == 0 {
		return ErrNotOpen
	}
	return nil
}

// Complete marks sn's open command id done and records its uploaded log, in one
// transaction; it returns ErrNotOpen, storing nothing, unless id is sn's open command.
// It leaves delivered_at alone: that is the time a reply first carried the command,
// which the next sync records from Redis, and stays empty if no reply ever did.
func (s *Store) Complete(ctx context.Context, sn string, id uint64, lg *model.Log) error {
	now := s.now()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&model.Command{}).
			Where("id = ? AND sn = ? AND open_key IS NOT NULL", id, sn).
			Updates(map[string]any{
				"state":    model.CommandDone,
				"done_at":  now,
				"open_key": nil,
			})
		if res.Error != nil {
			return fmt.Errorf("complete command: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotOpen
		}
		lg.SN, lg.CommandID, lg.CreatedAt = sn, id, now
		if err := tx.Create(lg).Error; err != nil {
			return fmt.Errorf("insert log: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.fleet.ClearOpen(ctx, map[string]uint64{sn: id}); err != nil {
		s.log.WarnContext(ctx, "command done but still on redis; the next sync clears it", "sn", sn, "id", id, "err", err)
	}
	return nil
}

// Sync moves the deliveries recorded on Redis into the database (pending becomes
// delivered), expires commands past their TTL, and makes Redis's open commands match
// the database's.
func (s *Store) Sync(ctx context.Context) error {
	if err := s.recordDeliveries(ctx); err != nil {
		return err
	}
	if err := s.db.WithContext(ctx).Model(&model.Command{}).
		Where("open_key IS NOT NULL AND expires_at <= ?", s.now()).
		Updates(map[string]any{"state": model.CommandExpired, "open_key": nil}).Error; err != nil {
		return fmt.Errorf("expire commands: %w", err)
	}
	return s.reconcile(ctx)
}

func (s *Store) recordDeliveries(ctx context.Context) error {
	ds, err := s.fleet.TakeDeliveries(ctx)
	if err != nil {
		return err
	}
	// A first-delivery time without a count is no reply carrying the command.
	maps.DeleteFunc(ds, func(_ uint64, d Delivery) bool { return d.Count <= 0 })
	if len(ds) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(ds))
	now := s.now()
	for i, part := range slices.Collect(slices.Chunk(ids, rowsPerStatement)) {
		q, args := deliveriesUpdate(part, ds, now)
		if err := s.db.WithContext(ctx).Exec(q, args...).Error; err != nil {
			rest := make(map[uint64]Delivery, len(ids))
			for _, id := range ids[i*rowsPerStatement:] {
				rest[id] = ds[id]
			}
			if rerr := s.fleet.RestoreDeliveries(ctx, rest); rerr != nil {
				s.log.ErrorContext(ctx, "deliveries lost: neither stored nor given back", "commands", len(rest), "err", rerr)
			}
			return fmt.Errorf("record deliveries: %w", err)
		}
	}
	return nil
}

// Delivery is fleet.Delivery, named here for brevity.
type Delivery = fleet.Delivery

// deliveriesUpdate builds one UPDATE adding the delivery counts of ids and moving
// pending commands to delivered, portable between MySQL and SQLite. Every delivery in ds
// has a count: a reply carried the command. One with no recorded first time counts as
// delivered now.
func deliveriesUpdate(ids []uint64, ds map[uint64]Delivery, now time.Time) (string, []any) {
	var counts, firsts, in strings.Builder
	args := make([]any, 0, 5*len(ids))
	var firstArgs, inArgs []any
	for i, id := range ids {
		d := ds[id]
		counts.WriteString(" WHEN ? THEN ?")
		args = append(args, id, d.Count)
		first := d.First
		if first.IsZero() {
			first = now
		}
		firsts.WriteString(" WHEN ? THEN ?")
		firstArgs = append(firstArgs, id, first)
		if i > 0 {
			in.WriteByte(',')
		}
		in.WriteByte('?')
		inArgs = append(inArgs, id)
	}
	q := "UPDATE commands SET deliveries = deliveries + CASE id" + counts.String() + " ELSE 0 END," +
		" delivered_at = COALESCE(delivered_at, CASE id" + firsts.String() + " END)," +
		" state = CASE WHEN state = '" + model.CommandPending + "' THEN '" + model.CommandDelivered + "' ELSE state END" +
		" WHERE id IN (" + in.String() + ")"
	args = append(append(args, firstArgs...), inArgs...)
	return q, args
}

// reconcile puts every open command of the database on Redis and drops from Redis what
// is no longer open. Redis is read first: a command created meanwhile is committed
// before it reaches Redis, so it is never mistaken for a stale entry.
func (s *Store) reconcile(ctx context.Context) error {
	onRedis, err := s.fleet.Open(ctx)
	if err != nil {
		return err
	}
	type row struct {
		ID uint64
		SN string
	}
	open := make(map[string]uint64, len(onRedis))
	var after uint64
	for {
		var rows []row
		if err := s.db.WithContext(ctx).Model(&model.Command{}).Select("id, sn").
			Where("open_key IS NOT NULL AND type = ? AND id > ?", model.CommandUploadLogs, after).
			Order("id").Limit(5000).Scan(&rows).Error; err != nil {
			return fmt.Errorf("read open commands: %w", err)
		}
		for _, r := range rows {
			open[r.SN] = r.ID
		}
		if len(rows) < 5000 {
			break
		}
		after = rows[len(rows)-1].ID
	}
	missing := map[string]uint64{}
	for sn, id := range open {
		if onRedis[sn] != id {
			missing[sn] = id
		}
	}
	stale := map[string]uint64{}
	for sn, id := range onRedis {
		if open[sn] != id {
			stale[sn] = id
		}
	}
	if err := s.fleet.ClearOpen(ctx, stale); err != nil {
		return err
	}
	return s.fleet.SetOpen(ctx, missing)
}

// Pull opens an upload_logs command for every device sel chooses that has none open,
// and returns how many it opened.
func (s *Store) Pull(ctx context.Context, sel model.Selector) (int64, error) {
	now := s.now()
	var opened int64
	after := ""
	for {
		q := s.db.WithContext(ctx).Model(&model.Device{}).Where("sn > ?", after)
		if sel.Tenant != nil {
			q = q.Where("tenant = ?", *sel.Tenant)
		}
		if sel.City != "" {
			q = q.Where("city = ?", sel.City)
		}
		if sel.Type != "" {
			q = q.Where("tyid = ?", sel.Type)
		}
		if sel.Line != nil {
			q = q.Where("line = ?", *sel.Line)
		}
		var sns []string
		if err := q.Order("sn").Limit(rowsPerStatement).Pluck("sn", &sns).Error; err != nil {
			return opened, fmt.Errorf("select devices to pull logs from: %w", err)
		}
		if len(sns) == 0 {
			break
		}
		cmds := make([]model.Command, len(sns))
		for i, sn := range sns {
			key := openKey(sn, model.CommandUploadLogs)
			cmds[i] = model.Command{SN: sn, Type: model.CommandUploadLogs, State: model.CommandPending,
				Origin: OriginLogPull, CreatedAt: now, ExpiresAt: now.Add(s.ttl), OpenKey: &key}
		}
		n, err := s.insert(ctx, cmds)
		if err != nil {
			return opened, err
		}
		opened += n
		if len(sns) < rowsPerStatement {
			break
		}
		after = sns[len(sns)-1]
	}
	return opened, s.reconcile(ctx)
}

// insert stores new commands, skipping any whose device already has one open of its
// type, and returns how many it stored. It reads which are open first and inserts only
// the others: InnoDB takes an auto-increment value for every row an INSERT offers, even
// one its ON DUPLICATE KEY clause then skips, so offering the open ones on every log
// pull tick burned an id per device and tick. The upsert stays as the guard against a
// command opened between the read and the insert, the only case that still takes an id
// for nothing. The INSERT is raw SQL because GORM's upsert adds RETURNING on MariaDB,
// which then counts the skipped rows as affected.
func (s *Store) insert(ctx context.Context, cmds []model.Command) (int64, error) {
	keys := make([]string, len(cmds))
	for i, c := range cmds {
		keys[i] = *c.OpenKey
	}
	var open []string
	if err := s.db.WithContext(ctx).Model(&model.Command{}).
		Where("open_key IN ?", keys).Pluck("open_key", &open).Error; err != nil {
		return 0, fmt.Errorf("read open commands: %w", err)
	}
	if len(open) > 0 {
		isOpen := make(map[string]bool, len(open))
		for _, k := range open {
			isOpen[k] = true
		}
		cmds = slices.DeleteFunc(slices.Clone(cmds), func(c model.Command) bool { return isOpen[*c.OpenKey] })
	}
	if len(cmds) == 0 {
		return 0, nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO commands (sn, type, state, origin, created_at, expires_at, deliveries, open_key) VALUES ")
	args := make([]any, 0, 8*len(cmds))
	for i, c := range cmds {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,0,?)")
		args = append(args, c.SN, c.Type, c.State, c.Origin, c.CreatedAt, c.ExpiresAt, *c.OpenKey)
	}
	if s.db.Dialector.Name() == "mysql" {
		b.WriteString(" ON DUPLICATE KEY UPDATE id = id")
	} else {
		b.WriteString(" ON CONFLICT DO NOTHING")
	}
	res := s.db.WithContext(ctx).Exec(b.String(), args...)
	if res.Error != nil {
		return 0, fmt.Errorf("insert commands: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// HandleSync is the asynq handler of task.TypeCommandSync.
func (s *Store) HandleSync(ctx context.Context, _ *asynq.Task) error { return s.Sync(ctx) }

// HandlePull is the asynq handler of task.TypeLogPull; the payload is the device selector.
func (s *Store) HandlePull(ctx context.Context, t *asynq.Task) error {
	sel, err := model.ParseSelector(string(t.Payload()))
	if err != nil {
		return fmt.Errorf("log pull selector: %v: %w", err, asynq.SkipRetry)
	}
	n, err := s.Pull(ctx, sel)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if n == 0 {
		level = slog.LevelDebug
	}
	s.log.Log(ctx, level, "log pull", "selector", string(t.Payload()), "opened", n)
	return nil
}
