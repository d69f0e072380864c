package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// GroupRepairOptions configures NewGroupRepair.
type GroupRepairOptions struct {
	// Queues and Groups name every aggregation group reports can be in; required.
	Queues, Groups []string
	// Every is how often the groups are checked; default 10s (one small script per queue).
	Every  time.Duration
	Logger *slog.Logger
}

// GroupRepair puts report groups that hold tasks back on their queue's list of groups.
//
// asynq v0.26 aggregates a group by moving its tasks into an aggregation set and, when
// that empties the group, removing the group from the queue's set of groups. A worker
// killed before it has enqueued the batch and deleted the set leaves the tasks there;
// two minutes later asynq's recoverer moves them back into the group, but does not list
// the group again, so no aggregation check looks at it until another report of that
// group arrives. A group whose devices went quiet then keeps acknowledged reports
// forever (the fault-injection suite lost 132 that way). GroupRepair lists such a
// group again, in one Lua script per queue, so the next aggregation check batches it.
type GroupRepair struct {
	client redis.UniversalClient
	opt    GroupRepairOptions
	stop   chan struct{}
	done   chan struct{}
}

// NewGroupRepair returns the repair of client's groups; Start begins it.
func NewGroupRepair(client redis.UniversalClient, o GroupRepairOptions) (*GroupRepair, error) {
	o.Every = cmp.Or(o.Every, 10*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case len(o.Queues) == 0 || len(o.Groups) == 0:
		return nil, errors.New("worker: group repair needs the queues and groups")
	case o.Every <= 0:
		return nil, errors.New("worker: group repair interval must be positive")
	}
	return &GroupRepair{client: client, opt: o}, nil
}

// relistGroups adds to the set of groups KEYS[1] every group ARGV[i] whose sorted set
// KEYS[i+1] holds tasks, and returns how many it added. Every key carries the queue's
// hash tag, so on a cluster they are on one node.
var relistGroups = redis.NewScript(`
local added = 0
for i, g in ipairs(ARGV) do
	if redis.call("ZCARD", KEYS[i+1]) > 0 and redis.call("SADD", KEYS[1], g) == 1 then
		added = added + 1
	end
end
return added`)

// Repair checks every group once and returns how many it listed again.
func (r *GroupRepair) Repair(ctx context.Context) (int, error) {
	total := 0
	for _, q := range r.opt.Queues {
		// asynq v0.26's keys: asynq:{<queue>}:groups and asynq:{<queue>}:g:<group>.
		prefix := "asynq:{" + q + "}:"
		keys := make([]string, 0, len(r.opt.Groups)+1)
		args := make([]any, 0, len(r.opt.Groups))
		keys = append(keys, prefix+"groups")
		for _, g := range r.opt.Groups {
			keys = append(keys, prefix+"g:"+g)
			args = append(args, g)
		}
		n, err := relistGroups.Run(ctx, r.client, keys, args...).Int()
		if err != nil {
			return total, fmt.Errorf("relist groups of queue %s: %w", q, err)
		}
		if n > 0 {
			r.opt.Logger.Warn("listed report groups again that a killed worker's aggregation had left unlisted", "queue", q, "groups", n)
		}
		total += n
	}
	return total, nil
}

// Start repairs now and then every Options.Every until Stop.
func (r *GroupRepair) Start() {
	if r.stop != nil {
		return // running already: a second loop could never be stopped
	}
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.done)
		tick := time.NewTicker(r.opt.Every)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := r.Repair(ctx); err != nil {
				r.opt.Logger.Warn("group repair failed; retrying at the next check", "err", err)
			}
			cancel()
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// Stop ends the repair and waits for a check in progress; it does nothing before Start.
func (r *GroupRepair) Stop() error {
	if r.stop == nil {
		return nil
	}
	close(r.stop)
	<-r.done
	r.stop = nil
	return nil
}
