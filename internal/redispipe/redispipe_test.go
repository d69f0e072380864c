package redispipe_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"monitor/internal/redispipe"
	"monitor/internal/testenv"
)

// echoScript returns its argument, or fails when the argument is "fail".
var echoScript = redis.NewScript(`if ARGV[1] == "fail" then return redis.error_reply("ERR asked to fail") end
redis.call("INCR", KEYS[1]); return ARGV[1]`)

func TestPipelinedGivesEveryCallItsOwnReply(t *testing.T) {
	rds := testenv.NewRedis(t)
	p := redispipe.New(rds.Client)
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
	p := redispipe.New(rds.Client)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.EvalSha(ctx, "0000000000000000000000000000000000000000", nil).Err(); err == nil {
		t.Error("a call with a canceled context succeeded")
	}
}

func TestPipelinedFailsWhenRedisIsGone(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer c.Close()
	if err := echoScript.Run(t.Context(), redispipe.New(c), []string{"k"}, "x").Err(); err == nil {
		t.Error("a call to an unreachable Redis succeeded")
	}
}
