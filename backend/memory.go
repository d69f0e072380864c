package backend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// MemoryUsage reads used_memory and maxmemory (0 when unlimited) from client's INFO
// memory; on a cluster, those of the master with the largest share of its maxmemory,
// since a full master refuses its slots' writes.
func MemoryUsage(ctx context.Context, client redis.UniversalClient) (used, limit int64, err error) {
	cluster, ok := client.(*redis.ClusterClient)
	if !ok {
		info, err := client.Info(ctx, "memory").Result()
		if err != nil {
			return 0, 0, fmt.Errorf("redis memory: %w", err)
		}
		return ParseMemoryInfo(info)
	}
	var mu sync.Mutex
	share := -1.0
	err = cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		info, err := node.Info(ctx, "memory").Result()
		if err != nil {
			return fmt.Errorf("redis memory of %s: %w", node.Options().Addr, err)
		}
		u, l, err := ParseMemoryInfo(info)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		s := 0.0 // no maxmemory: never full
		if l > 0 {
			s = float64(u) / float64(l)
		}
		if share < 0 || s > share {
			used, limit, share = u, l, s
		}
		return nil
	})
	return used, limit, err
}

// ParseMemoryInfo returns used_memory and maxmemory from the text of INFO memory.
func ParseMemoryInfo(info string) (used, limit int64, err error) {
	var haveUsed, haveLimit bool
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch k {
		case "used_memory":
			used, err = strconv.ParseInt(v, 10, 64)
			haveUsed = err == nil
		case "maxmemory":
			limit, err = strconv.ParseInt(v, 10, 64)
			haveLimit = err == nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", k, err)
		}
	}
	if !haveUsed || !haveLimit {
		return 0, 0, errors.New("no used_memory or maxmemory field")
	}
	return used, limit, nil
}
