package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"monitor/model"
)

func TestListDevicesFilters(t *testing.T) {
	h := newHarness(t)
	now := time.Now()
	old := now.Add(-2 * time.Hour)
	h.seedDevices(
		device("A1", 1, "0371", "B503", now),
		device("A2", 1, "0371", "B503", old),
		device("A3", 1, "0010", "C100", now),
		device("B1", 2, "0371", "C100", old),
		device("B2", 2, "0010", "B503", now),
	)
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"A1", "A2", "A3", "B1", "B2"}},
		{"state=online", []string{"A1", "A3", "B2"}},
		{"state=offline", []string{"A2", "B1"}},
		{"tenant=1", []string{"A1", "A2", "A3"}},
		{"tenant=2&state=offline", []string{"B1"}},
		{"city=0371", []string{"A1", "A2", "B1"}},
		{"type=C100", []string{"A3", "B1"}},
		{"tenant=1&city=0371&type=B503&state=online", []string{"A1"}},
		{"tenant=3", nil},
		{"city=9999", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			h := h.sub(t)
			var got deviceList
			h.getJSON("/api/v1/devices?"+tt.query, &got)
			var sns []string
			for _, d := range got.Items {
				sns = append(sns, d.SN)
				if d.Online != (d.SN == "A1" || d.SN == "A3" || d.SN == "B2") {
					t.Errorf("%s online = %v", d.SN, d.Online)
				}
			}
			if !slices.Equal(sns, tt.want) {
				t.Fatalf("devices = %v, want %v", sns, tt.want)
			}
			if got.NextCursor != "" {
				t.Fatalf("next cursor %q on the only page", got.NextCursor)
			}
		})
	}
}

func TestGetDevice(t *testing.T) {
	h := newHarness(t)
	seen := time.Date(2026, 11, 27, 8, 30, 0, 123456000, time.UTC)
	h.seedDevices(device("1C2EB08D", 7, "0371", "B503", seen))

	var d deviceJSON
	h.getJSON("/api/v1/devices/1C2EB08D", &d)
	if d.SN != "1C2EB08D" || d.Tenant != 7 || d.City != "0371" || d.Type != "B503" || d.Online ||
		!d.LastSeen.Equal(seen) || d.Report.Pos != "P1C2EB08D" || d.Report.Line != 101 ||
		d.Report.NDate != "2026-11-27" || d.Report.NTime != "08:30:00" || d.Report.Type != "B503" {
		t.Fatalf("device = %+v", d)
	}
	wantError(t, h.get("/api/v1/devices/NOPE"), http.StatusNotFound, "NOPE")
	wantError(t, h.get("/api/v1/devices/NOPE/reports"), http.StatusNotFound, "NOPE")
	wantError(t, h.get("/api/v1/devices/bad.sn"), http.StatusBadRequest, "sn:")
	wantError(t, h.get("/api/v1/devices/"+url.PathEscape("x y")), http.StatusBadRequest, "sn:")
	wantError(t, h.get("/api/v1/devices/1C2EB08D?x=1"), http.StatusBadRequest, `unknown query parameter "x"`)
}

func TestQueryParamsAreValidated(t *testing.T) {
	h := newHarness(t)
	h.seedDevices(device("A1", 1, "0371", "B503", time.Now()))
	tests := []struct{ target, param string }{
		{"/api/v1/devices?state=asleep", "state:"},
		{"/api/v1/devices?tenant=-1", "tenant:"},
		{"/api/v1/devices?tenant=4294967296", "tenant:"},
		{"/api/v1/devices?tenant=1&tenant=2", "tenant: given more than once"},
		{"/api/v1/devices?city=" + url.QueryEscape("01234567890123456"), "city:"},
		{"/api/v1/devices?city=%01", "city:"},
		{"/api/v1/devices?type=" + url.QueryEscape("\xff"), "type:"},
		{"/api/v1/devices?limit=0", "limit:"},
		{"/api/v1/devices?limit=1001", "limit:"},
		{"/api/v1/devices?limit=ten", "limit:"},
		{"/api/v1/devices?cursor=***", "cursor:"},
		{"/api/v1/devices?cursor=" + encodeCursor(cursorReports, "5"), "cursor:"},
		{"/api/v1/devices?tenat=1", `unknown query parameter "tenat"`},
		{"/api/v1/devices/A1/reports?from=yesterday", "from:"},
		{"/api/v1/devices/A1/reports?to=2026-13-01", "to:"},
		{"/api/v1/devices/A1/reports?from=2026-11-27&to=2026-11-26", "to: must be after from"},
		{"/api/v1/devices/A1/reports?limit=-5", "limit:"},
		{"/api/v1/devices/A1/reports?cursor=" + encodeCursor(cursorDevices, "A1"), "cursor:"},
		{"/api/v1/devices/A1/reports?state=online", `unknown query parameter "state"`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			wantError(t, h.sub(t).get(tt.target), http.StatusBadRequest, tt.param)
		})
	}
}

func TestListReportsNewestFirstWithinRange(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(o *Options) { o.Location = shanghai })
	newest := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	h.seedDevices(device("A1", 1, "0371", "B503", newest))
	h.seedReports("A1", 180, newest) // 07:01 to 10:00
	h.seedReports("B1", 5, newest)

	var all reportList
	h.getJSON("/api/v1/devices/A1/reports?limit=1000", &all)
	if len(all.Items) != 180 || all.NextCursor != "" {
		t.Fatalf("got %d reports, cursor %q", len(all.Items), all.NextCursor)
	}
	for i, r := range all.Items {
		if r.Report.SN != "A1" || (i > 0 && !r.AcceptedAt.Before(all.Items[i-1].AcceptedAt)) {
			t.Fatalf("report %d: %+v is not A1's, newest first", i, r)
		}
	}
	if !all.Items[0].AcceptedAt.Equal(newest) {
		t.Fatalf("newest = %v", all.Items[0].AcceptedAt)
	}

	var win reportList
	h.getJSON("/api/v1/devices/A1/reports?from=2026-11-27T09:00:00Z&to=2026-11-27T09:30:00Z", &win)
	if len(win.Items) != 30 || !win.Items[0].AcceptedAt.Equal(newest.Add(-31*time.Minute)) ||
		!win.Items[29].AcceptedAt.Equal(newest.Add(-time.Hour)) {
		t.Fatalf("window: %d reports, %v", len(win.Items), win.Items)
	}
	// Dates are days in the server's Location: 2026-11-27 in Shanghai ends at 16:00 UTC, the
	// 28th starts then.
	var day reportList
	h.getJSON("/api/v1/devices/A1/reports?from=2026-11-27&to=2026-11-27&limit=1000", &day)
	if len(day.Items) != 180 {
		t.Fatalf("whole day: %d reports", len(day.Items))
	}
	h.getJSON("/api/v1/devices/A1/reports?from=2026-11-28", &day)
	if len(day.Items) != 0 {
		t.Fatalf("next day: %d reports", len(day.Items))
	}
	h.getJSON("/api/v1/devices/A1/reports?from=2026-11-27T17:30:00%2B08:00", &day)
	if len(day.Items) != 31 { // 09:30 to 10:00 UTC inclusive
		t.Fatalf("from an offset time: %d reports", len(day.Items))
	}
	var none reportList
	h.getJSON("/api/v1/devices/A1/reports?to=2026-11-26T23:59:59Z", &none)
	if len(none.Items) != 0 {
		t.Fatalf("before the first report: %d reports", len(none.Items))
	}
}

// TestPaginationStableAcrossInserts pages through devices and reports while new ones
// arrive: every original item appears exactly once and in order.
func TestPaginationStableAcrossInserts(t *testing.T) {
	h := newHarness(t)
	now := time.Now()
	var want []string
	for i := range 25 {
		sn := fmt.Sprintf("M%03d", i*2)
		want = append(want, sn)
		h.seedDevices(device(sn, 1, "0371", "B503", now))
	}
	var got []string
	cursor, pages := "", 0
	for {
		var page deviceList
		h.getJSON("/api/v1/devices?limit=10&cursor="+url.QueryEscape(cursor), &page)
		pages++
		for _, d := range page.Items {
			got = append(got, d.SN)
		}
		// New devices sort before, among and after the ones still to come.
		h.seedDevices(device(fmt.Sprintf("A%03d", pages), 1, "0371", "B503", now),
			device(fmt.Sprintf("M%03d", pages*20+1), 1, "0371", "B503", now),
			device(fmt.Sprintf("Z%03d", pages), 1, "0371", "B503", now))
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	var orig []string
	for _, sn := range got {
		if sn[0] == 'M' && sn[3]%2 == 0 {
			orig = append(orig, sn)
		}
	}
	if !slices.Equal(orig, want) || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatalf("pages gave %v, want every one of %v once, in order", got, want)
	}

	newest := time.Now().UTC().Truncate(time.Second)
	h.seedReports("M000", 25, newest)
	var seqs []uint64
	var times []time.Time
	cursor = ""
	for {
		var page reportList
		h.getJSON("/api/v1/devices/M000/reports?limit=7&cursor="+url.QueryEscape(cursor), &page)
		for _, r := range page.Items {
			seqs = append(seqs, r.Seq)
			times = append(times, r.AcceptedAt)
		}
		// A newer report arrives between pages; it must not shift the pages still to come.
		h.seedReports("M000", 1, newest.Add(time.Duration(len(seqs))*time.Minute))
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seqs) != 25 {
		t.Fatalf("got %d reports, want 25: %v", len(seqs), seqs)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] >= seqs[i-1] || !times[i].Before(times[i-1]) {
			t.Fatalf("reports not strictly newest first at %d: %v", i, seqs)
		}
	}
}

// TestInjectionStringsAreInert sends SQL-injection strings in every filter: they are
// refused as invalid or match nothing, never a server error, and nothing changes.
func TestInjectionStringsAreInert(t *testing.T) {
	h := newHarness(t)
	now := time.Now()
	h.seedDevices(device("A1", 1, "0371", "B503", now), device("A2", 2, "0010", "C100", now.Add(-time.Hour)))
	h.seedReports("A1", 3, now)
	attacks := []string{
		`' OR '1'='1`, `" OR "1"="1`, `' OR 1=1 -- `, `1 OR 1=1`, `0371' OR '1'='1`,
		`x'; DROP TABLE devices; --`, `%' OR '%'='`, `\' OR 1=1#`, `' UNION SELECT * FROM tb_status --`,
	}
	params := map[string][]string{
		"/api/v1/devices":            {"state", "tenant", "city", "type", "limit", "cursor"},
		"/api/v1/devices/A1/reports": {"from", "to", "limit", "cursor"},
	}
	for path, names := range params {
		for _, name := range names {
			for _, a := range attacks {
				target := path + "?" + name + "=" + url.QueryEscape(a)
				rec := h.get(target)
				switch rec.Code {
				case http.StatusBadRequest:
					wantError(t, rec, http.StatusBadRequest, name+":")
				case http.StatusOK:
					var page deviceList
					h.getJSON(target, &page)
					if len(page.Items) != 0 {
						t.Errorf("%s returned %d devices", target, len(page.Items))
					}
					if name != "city" && name != "type" {
						t.Errorf("%s accepted", target)
					}
				default:
					t.Errorf("%s = %d %s", target, rec.Code, rec.Body)
				}
			}
		}
	}
	for _, a := range attacks {
		for _, suffix := range []string{"", "/reports"} {
			rec := h.get("/api/v1/devices/" + url.PathEscape(a) + suffix)
			if rec.Code != http.StatusBadRequest && rec.Code != http.StatusNotFound {
				t.Errorf("sn %q%s = %d %s", a, suffix, rec.Code, rec.Body)
			}
		}
	}
	var n int64
	if err := h.db.Model(&model.Device{}).Count(&n).Error; err != nil || n != 2 {
		t.Fatalf("devices after the attacks: %d, %v", n, err)
	}
	if err := h.db.Model(&model.Status{}).Count(&n).Error; err != nil || n != 3 {
		t.Fatalf("reports after the attacks: %d, %v", n, err)
	}
}

// BenchmarkFleetQueries measures the operator reads over a fleet of 100,000 devices, a
// third of them offline: one page of the list, a filtered page, and the fleet page.
func BenchmarkFleetQueries(b *testing.B) {
	h := newHarness(b)
	now := time.Now()
	devs := make([]model.Device, 0, 100_000)
	for i := range 100_000 {
		seen := now
		if i%3 == 0 {
			seen = now.Add(-time.Duration(1+i%48) * time.Hour)
		}
		devs = append(devs, device(fmt.Sprintf("D%06d", i), uint32(i%20), fmt.Sprintf("%04d", i%50), "B503", seen))
	}
	h.seedDevices(devs...)
	for _, target := range []string{
		"/api/v1/devices?limit=1000",
		"/api/v1/devices?state=offline&tenant=7&city=0007&limit=100",
		"/api/v1/devices/D054321",
		"/fleet",
	} {
		b.Run(target, func(b *testing.B) {
			h := h.sub(b)
			for b.Loop() {
				if rec := h.do(http.MethodGet, target, "", bearer...); rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
