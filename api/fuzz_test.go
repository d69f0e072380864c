package api

import (
	"errors"
	"monitor/model"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDeviceQuery feeds arbitrary query strings to the devices listing's parser: it
// never panics, every error names a parameter, and what it accepts is within bounds.
func FuzzDeviceQuery(f *testing.F) {
	f.Add("state=online&tenant=7&city=0371&type=B503&limit=10")
	f.Add("cursor=" + encodeCursor(cursorDevices, "1C2EB08D"))
	f.Add("city=" + url.QueryEscape(`' OR '1'='1`))
	f.Add("tenant=4294967296&limit=0")
	f.Add("limit=1000&cursor=ZDo")
	f.Add("tenant=1&tenant=2")
	f.Add("x=1")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		dq, err := parseDeviceQuery(q)
		if err != nil {
			checkParamError(t, err, "state", "tenant", "city", "type", "limit", "cursor")
			return
		}
		if dq.limit < 1 || dq.limit > maxLimit {
			t.Fatalf("limit %d accepted", dq.limit)
		}
		if dq.state != "" && dq.state != "online" && dq.state != "offline" {
			t.Fatalf("state %q accepted", dq.state)
		}
		for _, s := range []string{dq.city, dq.typ} {
			if len(s) > model.MaxCityLen || model.CheckText("x", s, model.MaxCityLen) != nil {
				t.Fatalf("filter %q accepted", s)
			}
		}
		if tenant := q.Get("tenant"); dq.hasTenant != (tenant != "") ||
			dq.hasTenant && (strings.Trim(tenant, "0123456789") != "" || strings.TrimLeft(tenant, "0") != strings.TrimLeft(strconv.FormatUint(uint64(dq.tenant), 10), "0")) {
			t.Fatalf("tenant %q read as %d (given: %v)", tenant, dq.tenant, dq.hasTenant)
		}
		if dq.after != "" {
			if model.ValidateSN(dq.after) != nil {
				t.Fatalf("cursor gave invalid sn %q", dq.after)
			}
			if back, err := deviceCursor(encodeCursor(cursorDevices, dq.after)); err != nil || back != dq.after {
				t.Fatalf("cursor round trip: %q, %v", back, err)
			}
		}
	})
}

// FuzzReportQuery does the same for the reports listing, including time parsing.
func FuzzReportQuery(f *testing.F) {
	f.Add("from=2026-11-27&to=2026-11-28&limit=5")
	f.Add("from=2026-11-27T08:00:00Z&to=2026-11-27T08:00:00.000001%2B08:00")
	f.Add("cursor=" + encodeCursor(cursorReports, "42"))
	f.Add("cursor=" + encodeCursor(cursorReports, "042"))
	f.Add("to=9999-12-31&from=0000-01-01")
	f.Add("from=2026-02-30")
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		rq, err := parseReportQuery(q, loc)
		if err != nil {
			checkParamError(t, err, "from", "to", "limit", "cursor")
			return
		}
		if rq.limit < 1 || rq.limit > maxLimit {
			t.Fatalf("limit %d accepted", rq.limit)
		}
		if !rq.from.IsZero() && !rq.to.IsZero() && !rq.from.Before(rq.to) {
			t.Fatalf("empty range [%v, %v) accepted", rq.from, rq.to)
		}
		if rq.before != 0 {
			if back, err := idCursor(cursorReports, encodeCursor(cursorReports, strconv.FormatUint(rq.before, 10))); err != nil || back != rq.before {
				t.Fatalf("cursor round trip: %d, %v", back, err)
			}
		}
	})
}

// FuzzCursor checks that any string is either refused or a cursor that encodes back to itself.
func FuzzCursor(f *testing.F) {
	f.Add(encodeCursor(cursorDevices, "A1"))
	f.Add(encodeCursor(cursorReports, "18446744073709551615"))
	f.Add("ZDo")
	f.Add("====")
	f.Fuzz(func(t *testing.T, c string) {
		if sn, err := deviceCursor(c); err == nil && sn != "" && encodeCursor(cursorDevices, sn) != c {
			t.Fatalf("device cursor %q decodes to %q, which encodes to %q", c, sn, encodeCursor(cursorDevices, sn))
		}
		if id, err := idCursor(cursorReports, c); err == nil && id != 0 && encodeCursor(cursorReports, strconv.FormatUint(id, 10)) != c {
			t.Fatalf("report cursor %q decodes to %d", c, id)
		}
	})
}

// checkParamError wants an error that names a parameter of the route, or the unknown
// one, on one printable line.
func checkParamError(t *testing.T, err error, names ...string) {
	t.Helper()
	msg := err.Error()
	name, _, _ := strings.Cut(msg, ":")
	named := strings.HasPrefix(msg, "unknown query parameter ") || slices.Contains(names, name)
	if !named || strings.ContainsAny(msg, "\n\r") || !utf8.ValidString(msg) || errors.Unwrap(err) != nil {
		t.Fatalf("error %q does not name a parameter on one printable line", msg)
	}
}
