package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"monitor/internal/testenv"
	"monitor/model"
)

// explainPartitions returns the partitions MySQL reads for the query that build makes.
func explainPartitions(t *testing.T, db *gorm.DB, build func(tx *gorm.DB) *gorm.DB) []string {
	t.Helper()
	query := db.ToSQL(func(tx *gorm.DB) *gorm.DB {
		var rows []model.Status
		return build(tx).Find(&rows)
	})
	var version string
	if err := db.Raw("SELECT VERSION()").Scan(&version).Error; err != nil {
		t.Fatal(err)
	}
	explain := "EXPLAIN "
	if strings.Contains(version, "MariaDB") {
		explain = "EXPLAIN PARTITIONS "
	}
	var plan []map[string]any
	if err := db.Raw(explain + query).Scan(&plan).Error; err != nil {
		t.Fatalf("%s%s: %v", explain, query, err)
	}
	if len(plan) != 1 {
		t.Fatalf("plan of %s: %v", query, plan)
	}
	var parts string
	switch v := plan[0]["partitions"].(type) {
	case string:
		parts = v
	case []byte:
		parts = string(v)
	default:
		t.Fatalf("plan of %s has no partitions column: %v", query, plan[0])
	}
	t.Logf("%s%s\n  reads partitions %s", explain, query, parts)
	return strings.Split(parts, ",")
}

// TestReportsReadOnlyTheirDays shows with EXPLAIN PARTITIONS that a device's history
// between two dates reads only the partitions of those days (and a day either side),
// while the listing without dates reads them all.
func TestReportsReadOnlyTheirDays(t *testing.T) {
	h := newHarness(t)
	if h.db.Dialector.Name() != "mysql" {
		testenv.Missing(t, "partition pruning needs MySQL")
		return
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	rq := reportQuery{from: today.AddDate(0, 0, -2), to: today, hasFrom: true, hasTo: true, limit: 100}
	got := explainPartitions(t, h.db, func(tx *gorm.DB) *gorm.DB { return reportsQuery(tx, "SN1", rq) })
	var want []string
	for d := -3; d <= 1; d++ {
		want = append(want, "p"+today.AddDate(0, 0, d).Format("20060102"))
	}
	if !slices.Equal(got, want) {
		t.Errorf("the two days' history reads partitions %v, want %v", got, want)
	}
	all := explainPartitions(t, h.db, func(tx *gorm.DB) *gorm.DB { return reportsQuery(tx, "SN1", reportQuery{limit: 100}) })
	if len(all) < 90 {
		t.Errorf("the whole history reads %d partitions, want all of them (%d days and pfuture)", len(all), 91+1+7)
	}

	// And the listing finds a report of the range whose date is the day before (a
	// terminal's local date behind UTC), but not one accepted outside the range.
	in := model.Status{SN: "SN1", NDate: today.AddDate(0, 0, -3).Format(time.DateOnly), NTime: "23:30:00", AcceptedAt: today.AddDate(0, 0, -2).Add(time.Hour)}
	out := model.Status{SN: "SN1", NDate: today.Format(time.DateOnly), NTime: "08:00:00", AcceptedAt: today.Add(8 * time.Hour)}
	dev := model.Device{SN: "SN1", FirstSeen: in.AcceptedAt, LastSeen: out.AcceptedAt}
	for _, row := range []any{&in, &out, &dev} {
		if err := h.db.Create(row).Error; err != nil {
			t.Fatal(err)
		}
	}
	// A date-only to is the whole day: the range is the two days before today.
	path := fmt.Sprintf("/api/v1/devices/SN1/reports?from=%s&to=%s", rq.from.Format(time.DateOnly), rq.to.AddDate(0, 0, -1).Format(time.DateOnly))
	var page reportList
	h.getJSON(path, &page)
	if len(page.Items) != 1 || page.Items[0].Seq != in.ID {
		t.Errorf("%s: %+v, want only row %d", path, page.Items, in.ID)
	}
}
