package alert

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"monitor/model"
	"monitor/task"
)

// Notification groups, like Alertmanager's group_by [tenant, city] with group_wait and
// group_interval. The alerts a sweep fires, resolves or repeats join the pending notice
// of their group (status, tenant, city) on Redis; a group's notice is enqueued at the
// first sweep at or after both its first pending alert's time + GroupWait and its last
// notice's time + GroupInterval. So a depot going dark over a few sweeps is one notice,
// or two when it takes longer than GroupWait. Pending notices live on Redis: a Redis
// that loses its data loses them (the alerts stay stored), and a sweep that fails
// between enqueueing and recording may send a notice twice.
//
// Both keys carry the hash tag {alert}, so savePending's transaction touches one slot of
// a Redis Cluster.
const (
	// keyPending maps a group's id to its pendingGroup (JSON).
	keyPending = "monitor:{alert}:pending"
	// keySent maps a group's id to when its last notice was enqueued (Unix micros).
	keySent = "monitor:{alert}:sent"
)

type groupID struct {
	Status string `json:"status"`
	Tenant uint32 `json:"tenant"`
	City   string `json:"city"`
}

func (g groupID) String() string {
	return g.Status + "|" + strconv.FormatUint(uint64(g.Tenant), 10) + "|" + g.City
}

type pendingGroup struct {
	Group  groupID      `json:"group"`
	First  time.Time    `json:"first"`
	Alerts []AlertEntry `json:"alerts"`
}

// notify adds firing and resolved to their groups' pending notices and enqueues the
// notices that are due; it returns how many it enqueued.
func (s *Sweeper) notify(ctx context.Context, firing, resolved []model.Alert, now time.Time) (int, error) {
	rdb := s.fleet.Redis()
	raw, err := rdb.HGetAll(ctx, keyPending).Result()
	if err != nil {
		return 0, fmt.Errorf("read pending notices: %w", err)
	}
	groups := map[string]*pendingGroup{}
	for k, v := range raw {
		var g pendingGroup
		if err := json.Unmarshal([]byte(v), &g); err != nil {
			// Not written by this code: it can never be sent, so it must not stay forever.
			s.log.ErrorContext(ctx, "drop unreadable pending notice", "group", k, "err", err)
			if err := rdb.HDel(ctx, keyPending, k).Err(); err != nil {
				return 0, fmt.Errorf("drop unreadable pending notice %s: %w", k, err)
			}
			continue
		}
		groups[k] = &g
	}
	changed := map[string]bool{}
	for _, a := range slices.Concat(firing, resolved) {
		id := groupID{Status: a.State, Tenant: a.Tenant, City: a.City}
		k := id.String()
		g := groups[k]
		if g == nil {
			g = &pendingGroup{Group: id, First: now}
			groups[k] = g
		}
		e := AlertEntry{ID: a.Fingerprint(), Seq: a.ID, Status: a.State, Kind: a.Kind, SN: a.SN, Tenant: a.Tenant,
			City: a.City, StartsAt: a.StartsAt, EndsAt: a.EndsAt, Value: a.Value, Decommissioned: a.Decommissioned}
		if i := slices.IndexFunc(g.Alerts, func(p AlertEntry) bool { return p.ID == e.ID }); i >= 0 {
			g.Alerts[i] = e // a repeat of a notice still pending: one entry, the newest value
		} else {
			g.Alerts = append(g.Alerts, e)
		}
		changed[k] = true
	}
	if len(groups) == 0 {
		return 0, nil
	}
	sentRaw, err := rdb.HGetAll(ctx, keySent).Result()
	if err != nil {
		return 0, fmt.Errorf("read notice times: %w", err)
	}
	var stale []string
	for k, v := range sentRaw {
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil || now.Sub(time.UnixMicro(us)) >= s.opt.GroupInterval {
			if groups[k] == nil {
				stale = append(stale, k) // no longer holds anything back
			}
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ga, gb := groups[a].Group, groups[b].Group
		return cmp.Or(cmp.Compare(ga.Status, gb.Status), cmp.Compare(ga.Tenant, gb.Tenant), cmp.Compare(ga.City, gb.City))
	})
	n := 0
	var sent []string
	for _, k := range keys {
		g := groups[k]
		due := g.First.Add(s.opt.GroupWait)
		if v, ok := sentRaw[k]; ok {
			if us, err := strconv.ParseInt(v, 10, 64); err == nil {
				due = later(due, time.UnixMicro(us).Add(s.opt.GroupInterval))
			}
		}
		if now.Before(due) {
			continue
		}
		for i, part := 0, []AlertEntry(nil); i < len(g.Alerts); i += len(part) {
			part = g.Alerts[i:min(i+maxAlertsPerNotification, len(g.Alerts))]
			body, err := json.Marshal(Notification{Version: NotificationVersion, GroupKey: groupKey(g.Group.Tenant, g.Group.City),
				Status: g.Group.Status, GroupLabels: GroupLabels{Tenant: g.Group.Tenant, City: g.Group.City}, Timestamp: now, Alerts: part})
			if err != nil {
				return n, fmt.Errorf("encode notification: %w", err)
			}
			if _, err := s.enqueuer.EnqueueContext(ctx, task.NewAlertNotifyTask(body)); err != nil {
				// The alerts are stored; record what did go out, keep the rest pending:
				// the parts of this group already enqueued leave it, so they go out once.
				if i > 0 {
					g.Alerts = g.Alerts[i:]
					changed[k] = true
				}
				if serr := s.savePending(ctx, groups, changed, sent, stale, now); serr != nil {
					return n, serr
				}
				return n, &enqueueError{err: err}
			}
			n++
		}
		sent = append(sent, k)
	}
	return n, s.savePending(ctx, groups, changed, sent, stale, now)
}

// savePending records the groups whose notices were enqueued now (sent) and writes back
// the pending groups that changed.
func (s *Sweeper) savePending(ctx context.Context, groups map[string]*pendingGroup, changed map[string]bool, sent, stale []string, now time.Time) error {
	rdb := s.fleet.Redis()
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		done := map[string]bool{}
		for _, k := range sent {
			done[k] = true
			p.HDel(ctx, keyPending, k)
			p.HSet(ctx, keySent, k, now.UnixMicro())
		}
		for k := range changed {
			if done[k] {
				continue
			}
			b, err := json.Marshal(groups[k])
			if err != nil {
				return err
			}
			p.HSet(ctx, keyPending, k, b)
		}
		if len(stale) > 0 {
			p.HDel(ctx, keySent, stale...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record pending notices: %w", err)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
