// Package redispipe batches concurrent Redis script calls into shared pipelines.
package redispipe

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// MaxFlushers bounds the pipelines in flight at once. A few keep Redis busy while the
// next batch gathers; more would only shrink the batches.
const MaxFlushers = 4

// New wraps c so that concurrent EVALSHA calls share round trips: each call waits
// while the calls that arrived meanwhile are sent as one pipeline. Every caller still
// gets its own reply and error, so nothing changes for it but the cost: asynq runs one
// EVALSHA per enqueued task, and under load its syscalls and wake-ups, in this process
// and in Redis, cost more than the script itself. Under light load a call is sent alone,
// at once. All other commands go straight to c. Pass the result to
// asynq.NewClientFromRedisClient; closing c closes it.
//
// c may be a single client, a failover (Sentinel) client or a cluster client: a
// cluster's pipeline splits by node, each call goes to the node of its keys' slot, and
// calls of one node still share a round trip. On a cluster, a call is never re-sent
// after a network error (go-redis would, within its redirects), only redirected on
// MOVED or ASK, which a node answers without running it.
func New(c redis.UniversalClient) redis.UniversalClient {
	return &pipelined{UniversalClient: c}
}

type pipelined struct {
	redis.UniversalClient

	mu       sync.Mutex
	pending  []*pipelinedCall
	flushers int
}

type pipelinedCall struct {
	ctx  context.Context
	cmd  *redis.Cmd
	done chan struct{}
}

// EvalSha queues the script call for the next pipeline and waits for its reply, or for
// ctx. A call abandoned on ctx may still run, like one whose reply was lost.
func (p *pipelined) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "evalsha", sha1, len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	call := &pipelinedCall{ctx: ctx, cmd: redis.NewCmd(ctx, cmdArgs...), done: make(chan struct{})}

	p.mu.Lock()
	p.pending = append(p.pending, call)
	start := p.flushers < MaxFlushers
	if start {
		p.flushers++
	}
	p.mu.Unlock()
	if start {
		go p.flush()
	}
	select {
	case <-call.done:
		return call.cmd
	case <-ctx.Done():
		// call.cmd still belongs to the flusher; answer with a command of our own.
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

// flush sends what is pending as one pipeline, again and again until nothing is left.
func (p *pipelined) flush() {
	for {
		p.mu.Lock()
		batch := p.pending
		p.pending = nil
		if len(batch) == 0 {
			p.flushers--
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()

		pipe := p.UniversalClient.Pipeline()
		for _, c := range batch {
			// Queuing never fails; errors arrive on each command from Exec.
			if err := pipe.Process(c.ctx, noRetry{c.cmd}); err != nil {
				c.cmd.SetErr(err)
			}
		}
		// Exec sets each command's own error (a script error, or the connection's for
		// all) and returns the first. A command left with neither a reply nor an error
		// was never sent: it gets Exec's error, so no caller takes it for a success.
		if _, err := pipe.Exec(context.Background()); err != nil {
			for _, c := range batch {
				if c.cmd.Err() == nil && c.cmd.Val() == nil {
					c.cmd.SetErr(err)
				}
			}
		}
		for _, c := range batch {
			close(c.done)
		}
	}
}

// noRetry marks a call that must not be re-sent after a network error: it may have run.
type noRetry struct{ *redis.Cmd }

// NoRetry tells go-redis's cluster pipeline not to re-send the call.
func (noRetry) NoRetry() bool { return true }
