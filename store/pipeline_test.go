package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"monitor/config"
	"monitor/internal/testenv"
	"monitor/store"
)

// echoScript returns its argument, or fails when the argument is "fail".
var echoScript = redis.NewScript(`if ARGV[1] == "fail" then return redis.error_reply("ERR asked to fail") end
redis.call("INCR", KEYS[1]); return ARGV[1]`)

func TestPipelinedGivesEveryCallItsOwnReply(t *testing.T) {
	rds := testenv.NewRedis(t)
	p := store.Pipelined(rds.Client)
	ctx := t.Context()
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			arg := fmt.Sprint(i)
			if i%50 == 7 {
				arg = "fail"
			}
			// Script.Run tries EVALSHA first and falls back to EVAL on NOSCRIPT.
			got, err := echoScript.Run(ctx, p, []string{"counter"}, arg).Result()
			switch {
			case arg == "fail" && err == nil:
				errs <- fmt.Errorf("call %d: want the script's error, got %v", i, got)
			case arg != "fail" && (err != nil || got != arg):
				errs <- fmt.Errorf("call %d: got %v, %v; want %s", i, got, err, arg)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := rds.Client.Get(ctx, "counter").Val(); got != fmt.Sprint(n-n/50) {
		t.Errorf("counter = %s, want %d: every good call ran exactly once", got, n-n/50)
	}
}

func TestPipelinedHonoursContext(t *testing.T) {
	rds := testenv.NewRedis(t)
	p := store.Pipelined(rds.Client)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.EvalSha(ctx, "0000000000000000000000000000000000000000", nil).Err(); err == nil {
		t.Error("a call with a canceled context succeeded")
	}
}

func TestPipelinedFailsWhenRedisIsGone(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer c.Close()
	if err := echoScript.Run(t.Context(), store.Pipelined(c), []string{"k"}, "x").Err(); err == nil {
		t.Error("a call to an unreachable Redis succeeded")
	}
}

// TestQueueEnqueuesWithAsynq checks the asynq client path the API uses: Redis.Queue.
func TestQueueEnqueuesWithAsynq(t *testing.T) {
	rds := testenv.NewRedis(t)
	cfg := config.Default()
	cfg.RedisAddr, cfg.RedisDB = rds.Addr, rds.DB
	r, err := store.OpenRedis(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}()
	client := asynq.NewClientFromRedisClient(r.Queue)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			_, err := client.EnqueueContext(t.Context(), asynq.NewTask("t", []byte(fmt.Sprint(i))),
				asynq.Queue("q"), asynq.Group(fmt.Sprint("g", i%3)))
			if err != nil {
				t.Errorf("enqueue %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	insp := asynq.NewInspectorFromRedisClient(rds.Client)
	groups, err := insp.Groups("q")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, g := range groups {
		total += g.Size
	}
	if len(groups) != 3 || total != 100 {
		t.Errorf("groups %v: want 100 tasks in 3 groups", groups)
	}
}
