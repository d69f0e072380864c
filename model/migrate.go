// Package model is monitor's domain: the terminal report and its validation, the
// devices, alerts, commands and uploaded logs, the device selector and tenant keys, and
// the database tables that hold them.
package model

import (
	"fmt"

	"gorm.io/gorm"
)

// Tables lists every table of the schema in creation order.
func Tables() []any {
	return []any{&Status{}, &Device{}, &Alert{}, &Command{}, &Log{}}
}

// Migrate creates or upgrades every table.
func Migrate(db *gorm.DB) error {
	if db.Dialector.Name() == "mysql" {
		// A binary collation: sn is case-sensitive ("ab12" and "AB12" are two devices, not
		// one report stored once), and the database orders strings as Go does.
		db = db.Set("gorm:table_options", "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
	}
	if err := db.AutoMigrate(Tables()...); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
