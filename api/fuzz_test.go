package api

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// The fuzz targets below compare the query parsers with references written from the API's
// description alone (README, openapi.yaml): a parser accepts a query exactly when its
// reference does and then reads the same values, and a refusal is one printable line
// naming a parameter the reference also finds at fault. The references share no code
// with the parsers: their own decimal, date, RFC 3339, text and base64url readers.

// FuzzDeviceQuery checks parseDeviceQuery against refDeviceQuery.
func FuzzDeviceQuery(f *testing.F) {
	f.Add("state=online&tenant=7&city=0371&type=B503&limit=10")
	f.Add("state=offline&tenant=4294967295&city=" + strings.Repeat("c", 16) + "&type=" + strings.Repeat("t", 16) + "&limit=1000")
	f.Add("state=Online&tenant=-1&city=" + strings.Repeat("c", 17) + "&type=%7F&limit=1001")
	f.Add("cursor=" + refEncodeCursor("d", "1C2EB08D"))
	f.Add("cursor=" + refEncodeCursor("d", strings.Repeat("A", 32)))
	f.Add("cursor=" + refEncodeCursor("d", strings.Repeat("A", 33)))
	f.Add("cursor=" + refEncodeCursor("r", "42"))
	f.Add("city=" + url.QueryEscape(`' OR '1'='1`))
	f.Add("city=%C3%A9&type=%E2%82%AC%F0%9F%98%80")
	f.Add("tenant=4294967296&limit=0")
	f.Add("tenant=0000000000000000000007&limit=0000000000000000000100")
	f.Add("limit=1000&cursor=ZDo")
	f.Add("tenant=1&tenant=2")
	f.Add("tenant=&limit=&cursor=&city=")
	f.Add("x=1")
	f.Add("=")
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw) // as echo's QueryParams: the pairs that parse
		want, bad := refDeviceQuery(q)
		got, err := parseDeviceQuery(q)
		if err != nil {
			checkParamError(t, err, bad)
			if bad == nil {
				t.Fatalf("refused %q: %v; the reference reads %+v", raw, err, want)
			}
			return
		}
		if bad != nil {
			t.Fatalf("accepted %q as %+v; the reference finds fault with %v", raw, got, bad)
		}
		if got != want {
			t.Fatalf("read %q as\n %+v\nthe reference reads\n %+v", raw, got, want)
		}
	})
}

// FuzzReportQuery checks parseReportQuery against refReportQuery, in a zone with
// historical offset changes. A bound that is given must be a bound, even the zero
// time, and an absent one must not.
func FuzzReportQuery(f *testing.F) {
	f.Add("from=2026-11-27&to=2026-11-28&limit=5")
	f.Add("from=2026-11-27&to=2026-11-27")
	f.Add("from=2026-11-27T08:00:00Z&to=2026-11-27T08:00:00.000001%2B08:00")
	f.Add("from=2026-11-27T16:00:00%2B08:00&to=2026-11-27T08:00:00Z")
	f.Add("from=2026-11-27T08:00:00.123456789123-23:59&to=2026-11-27T08:00:00-00:00")
	f.Add("to=2026-11-27T08:00:00+08:00")
	f.Add("cursor=" + refEncodeCursor("r", "42"))
	f.Add("cursor=" + refEncodeCursor("r", "042"))
	f.Add("cursor=" + refEncodeCursor("r", "18446744073709551616"))
	f.Add("to=9999-12-31&from=0000-01-01")
	f.Add("from=2026-02-30&to=2024-02-29")
	f.Add("from=2026-11-27t08:00:00z")
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		want, bad := refReportQuery(q, loc)
		got, err := parseReportQuery(q, loc)
		if err != nil {
			checkParamError(t, err, bad)
			if bad == nil {
				t.Fatalf("refused %q: %v; the reference reads %+v", raw, err, want)
			}
			return
		}
		if bad != nil {
			t.Fatalf("accepted %q as %+v; the reference finds fault with %v", raw, got, bad)
		}
		if got.limit != want.limit || got.before != want.before || !got.from.Equal(want.from) || !got.to.Equal(want.to) {
			t.Fatalf("read %q as from %s to %s limit %d before %d\nthe reference reads from %s to %s limit %d before %d", raw,
				refShow(got.from), refShow(got.to), got.limit, got.before, refShow(want.from), refShow(want.to), want.limit, want.before)
		}
		if got.hasFrom != (q.Get("from") != "") || got.hasTo != (q.Get("to") != "") {
			t.Fatalf("read %q as %+v: a given bound is no bound, or an absent one is", raw, got)
		}
	})
}

func refShow(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// FuzzCursor checks the cursors against refCursorKey, a reference decoder with its own
// base64url: deviceCursor and idCursor accept a string exactly when the reference does
// and return its key, and for any key encodeCursor gives the reference's encoding, which
// decodes back to the key when the key is one a listing can return.
func FuzzCursor(f *testing.F) {
	f.Add(refEncodeCursor("d", "A1"), "A1", uint64(1))
	f.Add(refEncodeCursor("r", "18446744073709551615"), "1C2EB08D", uint64(1<<64-1))
	f.Add(refEncodeCursor("cmd", "7"), strings.Repeat("_", 33), uint64(0))
	f.Add(refEncodeCursor("d", "a:b"), "a:b", uint64(10))
	f.Add("ZDo", "", uint64(0))
	f.Add("ZDpB", "-", uint64(0))
	f.Add("ZDpBB", "é", uint64(0))
	f.Add("ZDpB\n", "A\n", uint64(0))
	f.Add("ZDpBQ==", "AB", uint64(0))
	f.Add("ZDpBQg", "AB", uint64(0))
	f.Add("ZDpBQh", "AB", uint64(0))
	f.Add("====", "", uint64(0))
	f.Fuzz(func(t *testing.T, c, key string, id uint64) {
		// c as given, and well-formed base64url around the fuzzed key, so that the
		// fuzzer reaches keys such as "042" or "a b" without having to find their encoding.
		for _, c := range []string{c, refEncodeCursor("d", key), refEncodeCursor("r", key), refEncodeCursor("log", key)} {
			sn, err := deviceCursor(c)
			if want, ok := refCursorKey("d", c); ok != (err == nil) || ok && sn != want {
				t.Fatalf("deviceCursor(%q) = %q, %v; the reference reads %q, %v", c, sn, err, want, ok)
			}
			for _, kind := range []string{cursorReports, "alert", "cmd", "log"} {
				n, err := idCursor(kind, c)
				wantKey, ok := refCursorKey(kind, c)
				if ok != (err == nil) || ok && strconv.FormatUint(n, 10) != wantKey && !(n == 0 && wantKey == "") {
					t.Fatalf("idCursor(%q, %q) = %d, %v; the reference reads %q, %v", kind, c, n, err, wantKey, ok)
				}
			}
		}

		for _, kind := range []string{cursorDevices, cursorReports, "cmd"} {
			if enc, want := encodeCursor(kind, key), refEncodeCursor(kind, key); enc != want {
				t.Fatalf("encodeCursor(%q, %q) = %q, want %q", kind, key, enc, want)
			}
		}
		if refSN.MatchString(key) {
			if back, err := deviceCursor(encodeCursor(cursorDevices, key)); err != nil || back != key {
				t.Fatalf("devices cursor of %q reads back as %q, %v", key, back, err)
			}
		}
		if id != 0 {
			dec := strconv.FormatUint(id, 10)
			if back, err := idCursor(cursorReports, encodeCursor(cursorReports, dec)); err != nil || back != id {
				t.Fatalf("reports cursor of %d reads back as %d, %v", id, back, err)
			}
		}
	})
}

// checkParamError wants an error that names, on one printable line, a parameter the
// reference finds at fault ("?" stands for an unknown parameter), or any parameter when
// the reference finds none.
func checkParamError(t *testing.T, err error, bad map[string]bool) {
	t.Helper()
	msg := err.Error()
	name, _, _ := strings.Cut(msg, ":")
	if strings.HasPrefix(msg, "unknown query parameter ") {
		name = "?"
	}
	if bad != nil && !bad[name] {
		t.Fatalf("error %q names no parameter the reference finds at fault (%v)", msg, bad)
	}
	if !utf8.ValidString(msg) || strings.ContainsFunc(msg, refControl) || errors.Unwrap(err) != nil {
		t.Fatalf("error %q is not one printable line of its own", msg)
	}
}

// refParams is the reference's check of the parameter names: bad holds "?" for an unknown
// name and each allowed name given more than once; nil when all is well.
func refParams(q url.Values, allowed ...string) map[string]bool {
	var bad map[string]bool
	for name, vs := range q {
		switch {
		case !slices.Contains(allowed, name):
			bad = refFault(bad, "?")
		case len(vs) != 1:
			bad = refFault(bad, name)
		}
	}
	return bad
}

func refFault(bad map[string]bool, name string) map[string]bool {
	if bad == nil {
		bad = map[string]bool{}
	}
	bad[name] = true
	return bad
}

// refDeviceQuery reads the devices listing's query per the README and openapi.yaml:
// state online or offline; tenant a decimal below 2^32 (leading zeros allowed, no sign);
// city and type at most 16 bytes of printable UTF-8; limit a decimal 1 to 1000, 100 when
// absent; cursor a devices cursor. An empty value is an absent parameter.
func refDeviceQuery(q url.Values) (dq deviceQuery, bad map[string]bool) {
	if bad = refParams(q, "state", "tenant", "city", "type", "limit", "cursor"); bad != nil {
		return dq, bad
	}
	switch dq.state = q.Get("state"); dq.state {
	case "", "online", "offline":
	default:
		bad = refFault(bad, "state")
	}
	if s := q.Get("tenant"); s != "" {
		n, ok := refDecimal(s, 1<<32-1)
		if !ok {
			bad = refFault(bad, "tenant")
		}
		dq.tenant, dq.hasTenant = uint32(n), true
	}
	dq.city, dq.typ = q.Get("city"), q.Get("type")
	if !refText(dq.city, 16) {
		bad = refFault(bad, "city")
	}
	if !refText(dq.typ, 16) {
		bad = refFault(bad, "type")
	}
	var ok bool
	if dq.limit, ok = refLimit(q.Get("limit")); !ok {
		bad = refFault(bad, "limit")
	}
	if dq.after, ok = refCursorKey("d", q.Get("cursor")); !ok {
		bad = refFault(bad, "cursor")
	}
	if bad != nil {
		return deviceQuery{}, bad
	}
	return dq, nil
}

// refReportQuery reads the reports listing's query: from and to RFC 3339 or a date
// YYYY-MM-DD (the start of that day in loc for from, of the next day for to), from before
// to when both are given; limit and cursor as for devices, the cursor a reports cursor.
func refReportQuery(q url.Values, loc *time.Location) (rq reportQuery, bad map[string]bool) {
	if bad = refParams(q, "from", "to", "limit", "cursor"); bad != nil {
		return rq, bad
	}
	var okFrom, okTo, ok bool
	if rq.from, okFrom = refInstant(q.Get("from"), loc, false); !okFrom {
		bad = refFault(bad, "from")
	}
	if rq.to, okTo = refInstant(q.Get("to"), loc, true); !okTo {
		bad = refFault(bad, "to")
	}
	if okFrom && okTo && q.Get("from") != "" && q.Get("to") != "" && !rq.from.Before(rq.to) {
		bad = refFault(refFault(bad, "from"), "to")
	}
	if rq.limit, ok = refLimit(q.Get("limit")); !ok {
		bad = refFault(bad, "limit")
	}
	var key string
	if key, ok = refCursorKey("r", q.Get("cursor")); !ok {
		bad = refFault(bad, "cursor")
	} else if key != "" {
		rq.before, _ = refDecimal(key, 1<<64-1)
	}
	if bad != nil {
		return reportQuery{}, bad
	}
	return rq, nil
}

// refDecimal reads one or more ASCII digits (leading zeros allowed) as a number of at most max.
func refDecimal(s string, max uint64) (uint64, bool) {
	var n uint64
	for i := 0; i < len(s); i++ {
		d := uint64(s[i] - '0')
		if s[i] < '0' || s[i] > '9' || n > (max-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, s != ""
}

// refLimit is a page size: a decimal 1 to 1000, 100 when absent.
func refLimit(s string) (int, bool) {
	if s == "" {
		return 100, true
	}
	n, ok := refDecimal(s, 1000)
	return int(n), ok && n >= 1
}

// refText is at most max bytes of UTF-8 without control characters (Unicode category Cc).
func refText(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s) && !strings.ContainsFunc(s, refControl)
}

func refControl(r rune) bool { return unicode.Is(unicode.Cc, r) }

// refSN is a device serial number per openapi.yaml.
var refSN = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// refCursorKey reads a cursor of the given kind: "" (the first page) or the unpadded
// base64url encoding of "kind:key", canonical (so re-encoding gives the cursor back), with
// key a serial number for devices and otherwise an id: a decimal 1 to 2^64-1 without
// leading zeros.
func refCursorKey(kind, c string) (key string, ok bool) {
	if c == "" {
		return "", true
	}
	b, ok := refB64Decode(c)
	if !ok || refB64Encode(b) != c || !strings.HasPrefix(string(b), kind+":") {
		return "", false
	}
	key = string(b[len(kind)+1:])
	if kind == "d" {
		return key, refSN.MatchString(key)
	}
	_, ok = refDecimal(key, 1<<64-1)
	return key, ok && key[0] != '0'
}

func refEncodeCursor(kind, key string) string { return refB64Encode([]byte(kind + ":" + key)) }

const refB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// refB64Encode is unpadded base64url (RFC 4648 section 5), three bytes to four characters.
func refB64Encode(b []byte) string {
	var out []byte
	for i := 0; i < len(b); i += 3 {
		var v uint32
		n := min(3, len(b)-i)
		for j := range 3 {
			v <<= 8
			if j < n {
				v |= uint32(b[i+j])
			}
		}
		for j := range n + 1 {
			out = append(out, refB64[v>>(18-6*j)&63])
		}
	}
	return string(out)
}

// refB64Decode reads unpadded base64url, ignoring the unused low bits of a last partial
// group (refCursorKey's re-encoding catches those); ok is false for any other character or
// a length that leaves a single character over.
func refB64Decode(s string) ([]byte, bool) {
	if len(s)%4 == 1 {
		return nil, false
	}
	var out []byte
	for i := 0; i < len(s); i += 4 {
		var v uint32
		n := min(4, len(s)-i)
		for j := range 4 {
			v <<= 6
			if j < n {
				k := strings.IndexByte(refB64, s[i+j])
				if k < 0 {
					return nil, false
				}
				v |= uint32(k)
			}
		}
		for j := range n - 1 {
			out = append(out, byte(v>>(16-8*j)))
		}
	}
	return out, true
}

// refInstant reads an optional bound: "" (absent, the zero time), a strict RFC 3339
// date-time (upper-case T and Z, two-digit fields, seconds 00-59, offset -23:59 to
// +23:59, "." and any number of fraction digits, truncated to nanoseconds), or a date
// YYYY-MM-DD for the start of that day in loc, of the next day with endOfDay.
func refInstant(s string, loc *time.Location, endOfDay bool) (time.Time, bool) {
	if s == "" {
		return time.Time{}, true
	}
	if len(s) == 10 {
		y, m, d, ok := refDate(s)
		if !ok {
			return time.Time{}, false
		}
		if endOfDay {
			d++
		}
		return time.Date(y, time.Month(m), d, 0, 0, 0, 0, loc), true
	}
	if len(s) < 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	y, mo, d, ok := refDate(s[:10])
	h, ok1 := refTwo(s[11:13], 23)
	mi, ok2 := refTwo(s[14:16], 59)
	sec, ok3 := refTwo(s[17:19], 59)
	if !ok || !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	rest, ns := s[19:], 0
	if rest[0] == '.' {
		digits := len(rest) - len(strings.TrimLeft(rest[1:], "0123456789")) - 1
		if digits == 0 {
			return time.Time{}, false
		}
		frac := (rest[1:1+digits] + "000000000")[:9]
		n, _ := refDecimal(frac, 999999999)
		ns, rest = int(n), rest[1+digits:]
	}
	var offset int
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := refTwo(rest[1:3], 23)
		om, ok2 := refTwo(rest[4:6], 59)
		if !ok1 || !ok2 {
			return time.Time{}, false
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC).Add(-time.Duration(offset) * time.Second), true
}

// refTwo reads exactly two digits as a number of at most max.
func refTwo(s string, max int) (int, bool) {
	if len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	n := int(s[0]-'0')*10 + int(s[1]-'0')
	return n, n <= max
}

// refDate is a proleptic Gregorian date YYYY-MM-DD, years 0000 to 9999.
func refDate(s string) (y, m, d int, ok bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, 0, 0, false
	}
	hi, ok1 := refTwo(s[0:2], 99)
	lo, ok2 := refTwo(s[2:4], 99)
	m, ok3 := refTwo(s[5:7], 12)
	d, ok4 := refTwo(s[8:10], 31)
	y = hi*100 + lo
	if !ok1 || !ok2 || !ok3 || !ok4 || m < 1 || d < 1 {
		return 0, 0, 0, false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return y, m, d, d <= days
}
