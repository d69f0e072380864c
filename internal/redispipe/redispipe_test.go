package redispipe_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"monitor/internal/redispipe"
	"monitor/internal/testenv"
)

// echoScript returns its argument, or fails when the argument is "fail".
var echoScript = redis.NewScript(`if ARGV[1] == "fail" then return redis.error_reply("ERR asked to fail") end
redis.call("INCR", KEYS[1]); return ARGV[1]`)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

// TestPipelinedHonoursContext holds one call's pipeline on its way to Redis, so the
// call is in flight with no reply coming: cancelling its ctx must end the call with
// ctx's error at once, not when the reply or the connection's timeout arrives, and a
// call with a live ctx made meanwhile still gets its reply.
func TestPipelinedHonoursContext(t *testing.T) {
	rds := testenv.NewRedis(t)
	if err := echoScript.Load(t.Context(), rds.Client).Err(); err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewHoldProxy(t, rds.Addr, "hold-me")
	// No retries, so the held call is sent once; the read timeout bounds the wait for a
	// call that ignores its ctx, and the test fails on it.
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DB: rds.DB, MaxRetries: -1, ReadTimeout: 10 * time.Second})
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(proxy.Release) // runs first: lets the held pipeline finish before the close
	p := redispipe.New(c)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	held := make(chan error, 1)
	go func() { held <- p.EvalSha(ctx, echoScript.Hash(), []string{"counter"}, "hold-me").Err() }()
	<-proxy.Held() // the call's pipeline is written, and the proxy keeps it from Redis
	cancel()
	if err := <-held; !errors.Is(err, context.Canceled) {
		t.Fatalf("a call whose ctx was cancelled while Redis had not answered returned %v, want %v", err, context.Canceled)
	}
	// The held pipeline is still in flight: a call with a live ctx is not stuck behind it.
	if got, err := p.EvalSha(t.Context(), echoScript.Hash(), []string{"counter"}, "live").Result(); err != nil || got != "live" {
		t.Fatalf("a call with a live ctx got %v, %v; want live", got, err)
	}
}

func TestPipelinedFailsWhenRedisIsGone(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer c.Close()
	if err := echoScript.Run(t.Context(), redispipe.New(c), []string{"k"}, "x").Err(); err == nil {
		t.Error("a call to an unreachable Redis succeeded")
	}
}

// TestPipelinedOnRedisCluster: on a real 3-master cluster, concurrent calls whose keys
// sit in different slots, on different nodes, each reach their node and get their own
// reply, as on one Redis.
func TestPipelinedOnRedisCluster(t *testing.T) {
	addrs := testenv.NewRedisCluster(t, 3)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	p := redispipe.New(cc)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx := t.Context()
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("counter:{q%d}", i%12) // twelve slots, over all three masters
			got, err := echoScript.Run(ctx, p, []string{key}, fmt.Sprint(i)).Result()
			if err != nil || got != fmt.Sprint(i) {
				errs <- fmt.Errorf("call %d on %s: %v, %v", i, key, got, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for q := range 12 {
		v, err := cc.Get(ctx, fmt.Sprintf("counter:{q%d}", q)).Int()
		if err != nil {
			t.Fatal(err)
		}
		total += v
	}
	if total != n {
		t.Fatalf("the counters add up to %d, want %d: a call ran twice or not at all", total, n)
	}
}
