// Package model is monitor's domain: the terminal report and its validation, the
// devices, alerts, commands and uploaded logs, the device selector and tenant keys, and
// the database tables that hold them.
package model

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Tables lists every table of the schema in creation order.
func Tables() []any {
	return []any{&Status{}, &Device{}, &Alert{}, &AlertNotice{}, &Command{}, &Log{}}
}

// collation is the collation of every table and text column on MySQL. It is binary:
// sn is case-sensitive ("ab12" and "AB12" are two devices, not one report stored once),
// and the database orders strings as Go does.
const collation = "utf8mb4_bin"

// MigrateOptions are the settings of Migrate.
type MigrateOptions struct {
	// HistoryDays is how many days before today the daily partitions of a newly
	// partitioned tb_status start (MySQL), so reports dated up to that far back land in
	// their own day's partition; MONITOR_RETENTION_DAYS. Default 90.
	HistoryDays int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Migrate creates or upgrades every table and records SchemaVersion, which CheckSchema
// then requires. On MySQL it also converts tables that an older version created with
// another collation, so an upgraded deployment stops merging devices whose sn differ
// only in case, partitions tb_status by day when it is not (see partition.go) and
// creates its partitions PartitionsAhead days ahead. It refuses a schema that a newer
// build migrated (ErrSchemaTooNew).
func Migrate(db *gorm.DB, opt MigrateOptions) error {
	if opt.HistoryDays == 0 {
		opt.HistoryDays = 90
	}
	if opt.HistoryDays < 1 {
		return fmt.Errorf("migrate: history days %d is below 1", opt.HistoryDays)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := checkMigratable(db); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	base := db
	mysql := db.Dialector.Name() == "mysql"
	if mysql {
		db = db.Set("gorm:table_options", "DEFAULT CHARSET=utf8mb4 COLLATE="+collation)
	}
	if err := db.AutoMigrate(Tables()...); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := statusAcceptedIndex(base, !mysql); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if mysql {
		if err := convertCollation(db); err != nil {
			return err
		}
		if err := migratePartitions(base, opt); err != nil {
			return err
		}
	}
	if err := recordSchemaVersion(base); err != nil {
		return fmt.Errorf("migrate: record schema version: %w", err)
	}
	return nil
}

// statusAcceptedIndex is the index of tb_status on accepted_at. Only retention reads by
// accepted_at: on SQLite, deleting by it across the whole table; on partitioned MySQL
// only in the catch-all partition of far-future dates, which stays small. Every report
// would pay to keep it up to date (MariaDB's CPU for tb_status's INSERT: 10 µs a report
// with it, 8 without), so on MySQL it is dropped, and only SQLite has it.
func statusAcceptedIndex(db *gorm.DB, want bool) error {
	const index = "idx_status_accepted"
	m := db.Migrator()
	switch has := m.HasIndex(&Status{}, index); {
	case want && !has:
		if err := db.Exec("CREATE INDEX " + index + " ON tb_status (accepted_at)").Error; err != nil {
			return fmt.Errorf("create index %s: %w", index, err)
		}
	case !want && has:
		if err := m.DropIndex(&Status{}, index); err != nil {
			return fmt.Errorf("drop index %s: %w", index, err)
		}
	}
	return nil
}

// convertCollation rewrites every table of the schema whose default collation, or
// that of any of its text columns, is not the binary one. Converting can never create a
// duplicate: the binary collation tells more strings apart, never fewer.
func convertCollation(db *gorm.DB) error {
	for _, t := range Tables() {
		stmt := &gorm.Statement{DB: db}
		if err := stmt.Parse(t); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		table := stmt.Schema.Table
		var stale int64
		err := db.Raw(`SELECT
			(SELECT COUNT(*) FROM information_schema.TABLES
			  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND TABLE_COLLATION <> ?) +
			(SELECT COUNT(*) FROM information_schema.COLUMNS
			  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME <> ?)`,
			table, collation, table, collation).Scan(&stale).Error
		if err != nil {
			return fmt.Errorf("migrate: collation of %s: %w", table, err)
		}
		if stale == 0 {
			continue
		}
		if err := db.Exec("ALTER TABLE `" + table + "` CONVERT TO CHARACTER SET utf8mb4 COLLATE " + collation).Error; err != nil {
			return fmt.Errorf("migrate: convert %s to %s: %w", table, collation, err)
		}
	}
	return nil
}

// migratePartitions partitions tb_status when it is not, and creates its partitions ahead.
func migratePartitions(db *gorm.DB, opt MigrateOptions) error {
	ctx := context.Background()
	_, partitioned, err := StatusPartitions(ctx, db)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if !partitioned {
		if err := partitionStatus(ctx, db, opt.Now(), opt.HistoryDays); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	if _, err := EnsureStatusPartitions(ctx, db, opt.Now()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
