package api

import (
	"encoding/base64"
	"fmt"
	"monitor/model"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Paging limits shared by every operator listing.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// params reads query parameters for one route. It refuses parameters the route does not
// know and parameters given twice, so a typo like ?tenat=7 is an error instead of an
// unfiltered listing. Every error names the parameter and is safe to show the client.
type params struct {
	q url.Values
}

// newParams checks that q holds only the names in allowed, each at most once.
func newParams(q url.Values, allowed ...string) (params, error) {
	for name, vs := range q {
		known := false
		for _, a := range allowed {
			if name == a {
				known = true
				break
			}
		}
		if !known {
			return params{}, fmt.Errorf("unknown query parameter %q (want one of %s)", model.Clip(name), strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return params{}, fmt.Errorf("%s: given more than once", name)
		}
	}
	return params{q: q}, nil
}

// has reports whether the query gives name a non-empty value.
func (p params) has(name string) bool { return p.get(name) != "" }

// get returns the parameter's value, empty when absent.
func (p params) get(name string) string { return p.q.Get(name) }

// limit parses the limit parameter: defaultLimit when absent, at most maxLimit.
func (p params) limit() (int, error) { return parseLimit(p.get("limit")) }

// parseLimit parses a page size: defaultLimit when s is empty, else 1 to maxLimit.
func parseLimit(s string) (int, error) {
	if s == "" {
		return defaultLimit, nil
	}
	// ParseUint, unlike Atoi, refuses a sign: a limit is digits only, like every number parameter.
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 1 || n > maxLimit {
		return 0, fmt.Errorf("limit: want a whole number from 1 to %d, got %q", maxLimit, model.Clip(printable(s)))
	}
	return int(n), nil
}

// uint32Param parses an optional non-negative 32-bit number; ok is false when absent.
func (p params) uint32Param(name string) (n uint32, ok bool, err error) {
	s := p.get(name)
	if s == "" {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("%s: want a non-negative whole number below 2^32, got %q", name, model.Clip(printable(s)))
	}
	return uint32(v), true, nil
}

// text returns an optional free-text filter of at most max bytes of printable UTF-8.
// It is only ever bound as an SQL parameter, so any printable value is harmless.
func (p params) text(name string, max int) (string, error) {
	s := p.get(name)
	if err := model.CheckText(name, s, max); err != nil {
		return "", err
	}
	return s, nil
}

// oneOf returns an optional parameter that must be one of choices.
func (p params) oneOf(name string, choices ...string) (string, error) {
	s := p.get(name)
	if s == "" {
		return "", nil
	}
	for _, c := range choices {
		if s == c {
			return s, nil
		}
	}
	return "", fmt.Errorf("%s: want %s, got %q", name, strings.Join(choices, " or "), model.Clip(printable(s)))
}

// timeParam parses an optional instant: RFC 3339, or a date YYYY-MM-DD meaning the start
// of that day in loc; an absent parameter is the zero time, so callers that must tell
// it from 0001-01-01T00:00:00Z check p.has first. With endOfDay a date means the start of the following day, so that
// to=2026-11-27 includes the whole 27th.
func (p params) timeParam(name string, loc *time.Location, endOfDay bool) (time.Time, error) {
	s := p.get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := parseInstant(s, loc, endOfDay)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: want RFC 3339 (2026-11-27T08:00:00Z) or a date YYYY-MM-DD, got %q", name, model.Clip(printable(s)))
	}
	return t.UTC(), nil
}

// parseInstant reads a strict RFC 3339 date-time, or a date that is the start of that
// day in loc (of the following day with endOfDay). time.Parse alone is lenient: it takes
// a one-digit hour, a comma before the fraction and offsets such as +24:00.
func parseInstant(s string, loc *time.Location, endOfDay bool) (time.Time, error) {
	if len(s) == len(time.DateOnly) {
		d, err := time.ParseInLocation(time.DateOnly, s, loc)
		if err != nil {
			return time.Time{}, err
		}
		if endOfDay {
			// Midnight of the next day, not 24 hours later: a day can be 23 or 25 hours
			// long, and AddDate keeps the wall clock a DST jump at midnight moved.
			y, m, day := d.Date()
			return time.Date(y, m, day+1, 0, 0, 0, 0, loc), nil
		}
		return d, nil
	}
	if !rfc3339Shape(s) {
		return time.Time{}, fmt.Errorf("%q is not shaped like RFC 3339", s)
	}
	return time.Parse(time.RFC3339Nano, s)
}

// rfc3339Shape reports whether s is laid out as YYYY-MM-DDTHH:MM:SS, an optional '.'
// and fraction digits, then Z or ±HH:MM with an hour of at most 23 and minutes of at
// most 59. time.Parse checks the ranges of the rest.
func rfc3339Shape(s string) bool {
	digits := func(s string) bool {
		for i := range len(s) {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return len(s) > 0
	}
	if len(s) < 20 || !digits(s[0:4]) || s[4] != '-' || !digits(s[5:7]) || s[7] != '-' || !digits(s[8:10]) ||
		s[10] != 'T' || !digits(s[11:13]) || s[13] != ':' || !digits(s[14:16]) || s[16] != ':' || !digits(s[17:19]) {
		return false
	}
	zone := s[19:]
	if zone[0] == '.' {
		end := 1
		for end < len(zone) && zone[end] >= '0' && zone[end] <= '9' {
			end++
		}
		if end == 1 {
			return false
		}
		zone = zone[end:]
	}
	if zone == "Z" {
		return true
	}
	return len(zone) == 6 && (zone[0] == '+' || zone[0] == '-') && digits(zone[1:3]) && zone[3] == ':' &&
		digits(zone[4:6]) && zone[1:3] <= "23" && zone[4:6] <= "59"
}

// Cursor kinds keep a cursor of one listing from being used on another.
const (
	cursorDevices = "d"
	cursorReports = "r"
)

// encodeCursor returns the opaque cursor that resumes a listing of kind after key.
func encodeCursor(kind, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + key))
}

// decodeCursor returns the key of a cursor made by encodeCursor for kind; an empty
// cursor is the first page and returns "".
func decodeCursor(kind, cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(cursor)
	if err != nil {
		return "", fmt.Errorf("cursor: not a cursor returned by this listing")
	}
	k, key, ok := strings.Cut(string(b), ":")
	// Only the canonical encoding is a cursor, so each position has exactly one: the
	// decoder alone also takes non-canonical padding bits and skips \r and \n.
	if !ok || k != kind || key == "" || encodeCursor(kind, key) != cursor {
		return "", fmt.Errorf("cursor: not a cursor returned by this listing")
	}
	return key, nil
}

// deviceCursor decodes a devices cursor: the last sn of the previous page.
func deviceCursor(cursor string) (string, error) {
	sn, err := decodeCursor(cursorDevices, cursor)
	if err != nil || sn == "" {
		return "", err
	}
	if model.ValidateSN(sn) != nil {
		return "", fmt.Errorf("cursor: not a cursor returned by this listing")
	}
	return sn, nil
}

// idCursor decodes a cursor over ids: the last id of the previous page, 0 for the first page.
func idCursor(kind, cursor string) (uint64, error) {
	key, err := decodeCursor(kind, cursor)
	if err != nil || key == "" {
		return 0, err
	}
	id, err := strconv.ParseUint(key, 10, 64)
	if err != nil || id == 0 || strconv.FormatUint(id, 10) != key {
		return 0, fmt.Errorf("cursor: not a cursor returned by this listing")
	}
	return id, nil
}

// printable makes s safe to echo in an error message: invalid UTF-8 and control
// characters become U+FFFD.
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}
