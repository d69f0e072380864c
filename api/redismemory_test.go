package api

import (
	"testing"

	"monitor/internal/testenv"
)

// TestRedisMemoryReadsTheServer reads the real Redis: with no maxmemory (the shared test
// server has none) nothing is ever shed, and the reading holds the server's used memory.
func TestRedisMemoryReadsTheServer(t *testing.T) {
	r := testenv.NewRedis(t)
	c := r.Client
	m, err := NewRedisMemory(c, RedisMemoryOptions{ShedShare: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	defer m.Stop()
	if err := c.Info(t.Context(), "memory").Err(); err != nil && !testenv.Real() {
		return // the stand-in has no INFO memory: the watcher keeps its first state
	}
	if m.used.Load() <= 0 || m.Over() {
		t.Errorf("used %d over %v: want a positive reading and no shedding without maxmemory", m.used.Load(), m.Over())
	}
	if _, err := NewRedisMemory(c, RedisMemoryOptions{ShedShare: 1.2}); err == nil {
		t.Error("a shed share over 1 was taken")
	}
	var none *RedisMemory
	if none.Over() {
		t.Error("a nil RedisMemory sheds")
	}
}
