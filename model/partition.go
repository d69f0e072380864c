package model

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// tb_status on MySQL is partitioned by day on ndate (RANGE COLUMNS), so retention drops
// whole days instead of deleting rows. Partition pYYYYMMDD holds the reports dated that
// day; the oldest one also takes every older date, and pfuture takes every date past the
// newest day (MAXVALUE). So a report with any valid ndate has a partition: a terminal
// with a broken clock is stored like any other, never refused. Its unique key (sn, ndate,
// ntime) includes ndate, as MySQL requires of every unique key of a partitioned table,
// so one report still lands once. SQLite has no partitions.

// PartitionsAhead is how many days past today the daily partitions always reach: the
// retention job and Migrate create them ahead, so the daily job may miss a week of runs
// before today's reports land in pfuture (where they are still stored).
const PartitionsAhead = 7

// FuturePartition is the catch-all partition of dates past the newest daily one.
const FuturePartition = "pfuture"

// Partition is one daily partition of tb_status: Day is the date its reports carry (the
// oldest partition also holds older ones).
type Partition struct {
	Name string
	Day  time.Time
}

// partitionName is the name of day's partition.
func partitionName(day time.Time) string { return "p" + day.Format("20060102") }

// dayOf returns the UTC midnight of t's date.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// partitionDefs returns the definitions of the daily partitions from first to last.
func partitionDefs(first, last time.Time) []string {
	var defs []string
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		defs = append(defs, fmt.Sprintf("PARTITION %s VALUES LESS THAN ('%s')", partitionName(d), d.AddDate(0, 0, 1).Format(time.DateOnly)))
	}
	return defs
}

// StatusPartitions returns the daily partitions of tb_status, oldest first, and whether
// the table is partitioned at all (never on SQLite).
func StatusPartitions(ctx context.Context, db *gorm.DB) ([]Partition, bool, error) {
	if db.Dialector.Name() != "mysql" {
		return nil, false, nil
	}
	var names []string
	if err := db.WithContext(ctx).Raw(`SELECT PARTITION_NAME FROM information_schema.PARTITIONS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tb_status' AND PARTITION_NAME IS NOT NULL
		ORDER BY PARTITION_ORDINAL_POSITION`).Scan(&names).Error; err != nil {
		return nil, false, fmt.Errorf("read tb_status partitions: %w", err)
	}
	if len(names) == 0 {
		return nil, false, nil
	}
	var out []Partition
	for _, n := range names {
		if n == FuturePartition {
			continue
		}
		day, err := time.Parse("p20060102", n)
		if err != nil {
			return nil, true, fmt.Errorf("tb_status partition %q is not one monitor made", n)
		}
		out = append(out, Partition{Name: n, Day: day})
	}
	if !slices.Contains(names, FuturePartition) || len(out) == 0 {
		return nil, true, fmt.Errorf("tb_status partitions %v are not the daily ones monitor makes", names)
	}
	return out, true, nil
}

// partitionStatus partitions an unpartitioned tb_status by day: daily partitions from
// back+1 days before now to PartitionsAhead days after it. The first one also holds
// every older date: it is the first that a retention of back days drops, so reports
// dated before the retention window (old rows, a terminal's clock far behind) go at the
// next retention run. Every unique key gains ndate: the primary key becomes (id,
// ndate). MySQL copies the table to do it, blocking writes meanwhile (README says how
// long it takes, and how to convert a large table online instead).
func partitionStatus(ctx context.Context, db *gorm.DB, now time.Time, back int) error {
	today := dayOf(now)
	defs := append(partitionDefs(today.AddDate(0, 0, -back-1), today.AddDate(0, 0, PartitionsAhead)),
		"PARTITION "+FuturePartition+" VALUES LESS THAN (MAXVALUE)")
	q := "ALTER TABLE tb_status DROP PRIMARY KEY, ADD PRIMARY KEY (id, ndate) PARTITION BY RANGE COLUMNS(ndate) (" +
		strings.Join(defs, ", ") + ")"
	if err := db.WithContext(ctx).Exec(q).Error; err != nil {
		return fmt.Errorf("partition tb_status: %w", err)
	}
	return nil
}

// EnsureStatusPartitions creates the daily partitions of tb_status missing between its
// newest one and PartitionsAhead days after now, by splitting them off pfuture (which
// copies only the rows pfuture holds: reports dated in the future). It returns how many
// it created; nothing on SQLite or an unpartitioned table.
func EnsureStatusPartitions(ctx context.Context, db *gorm.DB, now time.Time) (int, error) {
	parts, partitioned, err := StatusPartitions(ctx, db)
	if err != nil || !partitioned {
		return 0, err
	}
	last := dayOf(now).AddDate(0, 0, PartitionsAhead)
	next := parts[len(parts)-1].Day.AddDate(0, 0, 1)
	if next.After(last) {
		return 0, nil
	}
	defs := append(partitionDefs(next, last), "PARTITION "+FuturePartition+" VALUES LESS THAN (MAXVALUE)")
	q := "ALTER TABLE tb_status REORGANIZE PARTITION " + FuturePartition + " INTO (" + strings.Join(defs, ", ") + ")"
	if err := db.WithContext(ctx).Exec(q).Error; err != nil {
		return 0, fmt.Errorf("create tb_status partitions: %w", err)
	}
	return len(defs) - 1, nil
}

// ErrNotPartitioned is returned by DropStatusPartitions for a tb_status without
// partitions (SQLite): its history is deleted row by row instead.
var ErrNotPartitioned = errors.New("tb_status is not partitioned")

// DropStatusPartitions drops the daily partitions of tb_status whose reports are all
// dated before cutoff's date, and returns their names. It always keeps the newest daily
// partition, so the table keeps its layout.
func DropStatusPartitions(ctx context.Context, db *gorm.DB, cutoff time.Time) ([]string, error) {
	parts, partitioned, err := StatusPartitions(ctx, db)
	if err != nil {
		return nil, err
	}
	if !partitioned {
		return nil, ErrNotPartitioned
	}
	day := dayOf(cutoff)
	var old []string
	for _, p := range parts[:len(parts)-1] {
		// p holds dates before p.Day+1 (and p.Day itself): all old when p.Day+1 <= cutoff.
		if p.Day.AddDate(0, 0, 1).After(day) {
			break
		}
		old = append(old, p.Name)
	}
	if len(old) == 0 {
		return nil, nil
	}
	if err := db.WithContext(ctx).Exec("ALTER TABLE tb_status DROP PARTITION " + strings.Join(old, ", ")).Error; err != nil {
		return nil, fmt.Errorf("drop tb_status partitions: %w", err)
	}
	return old, nil
}
