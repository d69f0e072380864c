package model

import (
	"fmt"
	fixture_ "monitor/internal/fixture"
	"strings"
	"testing"
	"time"
)

// fixture is the seed's status report; withField varies one field of it.
const fixture = fixture_.Status

var withField = fixture_.WithField

func TestParseReportAcceptsFixture(t *testing.T) {
	r, err := ParseReport([]byte(fixture))
	if err != nil {
		t.Fatal(err)
	}
	if r.SN != "1C2EB08D" || r.Pos != "12345678" || r.City != "0371" || r.Type != "B503" || r.Line != 101 ||
		r.NDate != "2021-08-07" || r.NTime != "18:30:30" || r.STime != "05:01:01" || r.CTime != "18:30:20" {
		t.Fatalf("decoded %+v", r)
	}
}

func TestParseReportRules(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string // substring naming the field; empty = accepted
	}{
		{"fixture", fixture, ""},
		{"unknown field ignored", strings.Replace(fixture, "{", `{"firmware":"v9",`, 1), ""},
		{"sn max length", withField("sn", `"`+strings.Repeat("a", 32)+`"`), ""},
		{"sn underscore and dash", withField("sn", `"A_b-9"`), ""},
		{"max uint32", withField("amount", "4294967295"), ""},
		{"empty stime", withField("stime", `""`), ""},
		{"missing stime", withField("stime", ""), ""},
		{"leap day", withField("ndate", `"2024-02-29"`), ""},

		{"empty body", "", "empty body"},
		{"truncated", fixture[:40], "bad JSON"},
		{"not an object", `[1,2]`, "bad JSON"},
		{"two values", fixture + fixture, "after top-level value"},
		{"missing sn", withField("sn", ""), "sn: required"},
		{"null sn", withField("sn", "null"), "sn: required"},
		{"empty sn", withField("sn", `""`), "sn: required"},
		{"sn too long", withField("sn", `"`+strings.Repeat("a", 33)+`"`), "sn: longer than 32"},
		{"sn with quote", withField("sn", `"a'b"`), "sn: only"},
		{"sn with SQL", withField("sn", `"x' OR '1'='1"`), "sn: only"},
		{"sn with space", withField("sn", `"a b"`), "sn: only"},
		{"sn with slash", withField("sn", `"../etc"`), "sn: only"},
		{"sn unicode", withField("sn", `"设备"`), "sn: only"},
		{"sn a number", withField("sn", `123`), "sn: want a string"},
		{"pos too long", withField("pos", `"`+strings.Repeat("1", 33)+`"`), "pos: longer"},
		{"city control char", withField("city", `"03\u000171"`), "city: must be printable"},
		{"id too long", withField("id", `"`+strings.Repeat("B", 17)+`"`), "id: longer"},
		{"missing ndate", withField("ndate", ""), "ndate"},
		{"bad ndate", withField("ndate", `"2021-13-07"`), "ndate"},
		{"ndate Feb 30", withField("ndate", `"2021-02-30"`), "ndate"},
		{"ndate other format", withField("ndate", `"07/08/2021"`), "ndate"},
		{"ndate short", withField("ndate", `"2021-8-7"`), "ndate"},
		{"missing ntime", withField("ntime", ""), "ntime"},
		{"bad ntime", withField("ntime", `"25:00:00"`), "ntime"},
		{"ntime no seconds", withField("ntime", `"18:30"`), "ntime"},
		{"bad stime", withField("stime", `"5am"`), "stime"},
		{"bad ctime", withField("ctime", `"99:99:99"`), "ctime"},
		{"negative unum1", withField("unum1", "-1"), "unum1"},
		{"negative unum2", withField("unum2", "-5"), "unum2"},
		{"amount over 32 bits", withField("amount", "4294967296"), "amount"},
		{"count fraction", withField("count", "1.5"), "count"},
		{"line string", withField("line", `"101"`), "line"},
		{"tenant huge", withField("tenant", "1e30"), "tenant"},
		{"tenant bool", withField("tenant", "true"), "tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseReport([]byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("accepted, want error naming %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("err = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestDateAndClockAgreeWithTimeParse checks the hand-written validDate and validClock
// against time.Parse with the contract's layouts, the reference they replace: every
// HH:MM:SS of two digits each, every month and day number in years that test each leap
// rule, February 29th of every year, and every byte at every position of a valid value.
func TestDateAndClockAgreeWithTimeParse(t *testing.T) {
	parses := func(layout, s string) bool {
		_, err := time.Parse(layout, s)
		return err == nil && len(s) == len(layout)
	}
	check := func(layout string, valid func(string) bool, s string) {
		t.Helper()
		if got, want := valid(s), parses(layout, s); got != want {
			t.Fatalf("%q: valid %v, time.Parse(%q) %v", s, got, layout, want)
		}
	}
	for h := range 100 {
		for m := range 100 {
			for s := range 100 {
				check(time.TimeOnly, validClock, fmt.Sprintf("%02d:%02d:%02d", h, m, s))
			}
		}
	}
	for _, y := range []int{0, 1, 4, 100, 400, 1900, 2000, 2024, 2026, 2100, 9999} {
		for m := range 100 {
			for d := range 100 {
				check(time.DateOnly, validDate, fmt.Sprintf("%04d-%02d-%02d", y, m, d))
			}
		}
	}
	for y := range 10000 {
		check(time.DateOnly, validDate, fmt.Sprintf("%04d-02-29", y))
	}
	for _, base := range []struct {
		layout string
		valid  func(string) bool
		s      string
	}{{time.TimeOnly, validClock, "23:59:59"}, {time.DateOnly, validDate, "2024-02-29"}} {
		for i := range len(base.s) {
			for c := range 256 {
				b := []byte(base.s)
				b[i] = byte(c)
				check(base.layout, base.valid, string(b))
			}
			check(base.layout, base.valid, base.s[:i]+base.s[i+1:])
			check(base.layout, base.valid, base.s[:i]+"0"+base.s[i:])
		}
	}
	valid := 0
	for _, s := range []string{"00:00:00", "23:59:59", "2026-03-01", "2024-02-29", "0000-02-29"} {
		if validClock(s) || validDate(s) {
			valid++
		}
	}
	if valid != 5 {
		t.Fatalf("%d of 5 known-good values valid", valid)
	}
}
