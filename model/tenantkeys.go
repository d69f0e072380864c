package model

import (
	"fmt"
	"strconv"
	"strings"
)

// TenantKeys holds the device key of each tenant: with MONITOR_DEVICE_AUTH=tenant-key a
// terminal proves it belongs to its tenant with that key.
type TenantKeys map[uint32]string

// ParseTenantKeys parses "tenant:key" pairs separated by commas.
func ParseTenantKeys(s string) (TenantKeys, error) {
	keys := make(TenantKeys)
	for pair := range strings.SplitSeq(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		t, k, ok := strings.Cut(pair, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not tenant:key", redactPair(pair))
		}
		tenant, err := strconv.ParseUint(strings.TrimSpace(t), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("tenant %q is not a non-negative 32-bit number", t)
		}
		if _, dup := keys[uint32(tenant)]; dup {
			return nil, fmt.Errorf("tenant %d has two keys", tenant)
		}
		keys[uint32(tenant)] = k
	}
	return keys, nil
}

// redactPair keeps a device key out of error messages.
func redactPair(pair string) string {
	if t, _, ok := strings.Cut(pair, ":"); ok {
		return t + ":***"
	}
	return "***"
}
