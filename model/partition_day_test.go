package model

import (
	"testing"
	"time"
)

// TestDayOfIsTheUTCDate: migrate (local clock) and retention (UTC clock) name the same
// day for the same instant, whatever the host's time zone.
func TestDayOfIsTheUTCDate(t *testing.T) {
	east := time.FixedZone("UTC+8", 8*3600)
	at := time.Date(2026, 3, 2, 1, 30, 0, 0, east) // 2026-03-01 17:30 UTC
	if got := partitionName(dayOf(at)); got != "p20260301" {
		t.Errorf("dayOf(%v) names %s, want p20260301 (the UTC date)", at, got)
	}
	if got, want := dayOf(at), dayOf(at.UTC()); !got.Equal(want) {
		t.Errorf("dayOf differs by zone: %v and %v", got, want)
	}
}
