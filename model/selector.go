package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Selector chooses devices by their latest report; the zero Selector chooses all.
type Selector struct {
	Tenant *uint32
	City   string
	Type   string
	Line   *uint32
}

// All reports whether the selector chooses every device.
func (s Selector) All() bool { return s.Tenant == nil && s.City == "" && s.Type == "" && s.Line == nil }

// ParseSelector parses "all" or key=value pairs joined by "," over tenant, city, type and line.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return sel, nil
	}
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return sel, fmt.Errorf("%q is not key=value (keys: tenant, city, type, line) or all", pair)
		}
		if seen[k] {
			return sel, fmt.Errorf("%s is given twice", k)
		}
		seen[k] = true
		switch k {
		case "tenant", "line":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return sel, fmt.Errorf("%s=%q is not a non-negative 32-bit number", k, v)
			}
			u := uint32(n)
			if k == "tenant" {
				sel.Tenant = &u
			} else {
				sel.Line = &u
			}
		case "city":
			if len(v) > MaxCityLen {
				return sel, fmt.Errorf("city=%q is longer than %d bytes", v, MaxCityLen)
			}
			sel.City = v
		case "type":
			if len(v) > MaxTypeLen {
				return sel, fmt.Errorf("type=%q is longer than %d bytes", v, MaxTypeLen)
			}
			sel.Type = v
		default:
			return sel, fmt.Errorf("%q is not a selector key (keys: tenant, city, type, line)", k)
		}
	}
	return sel, nil
}
