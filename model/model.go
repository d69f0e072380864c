// Package model declares the database tables and creates or upgrades them.
package model

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Status is one row of tb_status, the history of reports. Its columns are the seed's,
// plus id and the time the API accepted the report. The unique key on (sn, ndate, ntime)
// makes a repeated report or a re-delivered batch land once.
type Status struct {
	ID         uint64    `gorm:"primaryKey;autoIncrement"`
	SN         string    `gorm:"column:sn;type:varchar(32);not null;uniqueIndex:uk_status_report,priority:1"`
	PosNo      string    `gorm:"column:posno;type:varchar(32);not null;default:''"`
	City       string    `gorm:"column:city;type:varchar(16);not null;default:''"`
	TyID       string    `gorm:"column:tyid;type:varchar(16);not null;default:''"`
	Unum1      uint32    `gorm:"column:unum1;not null;default:0"`
	Unum2      uint32    `gorm:"column:unum2;not null;default:0"`
	NDate      string    `gorm:"column:ndate;type:char(10);not null;uniqueIndex:uk_status_report,priority:2"`
	NTime      string    `gorm:"column:ntime;type:char(8);not null;uniqueIndex:uk_status_report,priority:3"`
	Amount     uint32    `gorm:"column:amount;not null;default:0"`
	Count      uint32    `gorm:"column:count;not null;default:0"`
	Line       uint32    `gorm:"column:line;not null;default:0"`
	STime      string    `gorm:"column:stime;type:varchar(8);not null;default:''"`
	CTime      string    `gorm:"column:ctime;type:varchar(8);not null;default:''"`
	Tenant     uint32    `gorm:"column:tenant;not null;default:0"`
	AcceptedAt time.Time `gorm:"column:accepted_at;precision:6;not null;index:idx_status_accepted"`
}

// TableName is fixed by the contract.
func (Status) TableName() string { return "tb_status" }

// Device is one terminal with its newest report. LastSeen is when the API accepted that
// report, never when a worker wrote it, so a backlog does not make devices look silent.
type Device struct {
	SN        string    `gorm:"column:sn;type:varchar(32);primaryKey"`
	Tenant    uint32    `gorm:"column:tenant;not null;default:0;index:idx_device_place,priority:1"`
	City      string    `gorm:"column:city;type:varchar(16);not null;default:'';index:idx_device_place,priority:2"`
	TyID      string    `gorm:"column:tyid;type:varchar(16);not null;default:''"`
	PosNo     string    `gorm:"column:posno;type:varchar(32);not null;default:''"`
	Line      uint32    `gorm:"column:line;not null;default:0"`
	Unum1     uint32    `gorm:"column:unum1;not null;default:0"`
	Unum2     uint32    `gorm:"column:unum2;not null;default:0"`
	Amount    uint32    `gorm:"column:amount;not null;default:0"`
	Count     uint32    `gorm:"column:count;not null;default:0"`
	NDate     string    `gorm:"column:ndate;type:char(10);not null;default:''"`
	NTime     string    `gorm:"column:ntime;type:char(8);not null;default:''"`
	STime     string    `gorm:"column:stime;type:varchar(8);not null;default:''"`
	CTime     string    `gorm:"column:ctime;type:varchar(8);not null;default:''"`
	FirstSeen time.Time `gorm:"column:first_seen;precision:6;not null"`
	LastSeen  time.Time `gorm:"column:last_seen;precision:6;not null;index:idx_device_last_seen"`
}

// TableName keeps the name independent of GORM's pluralisation rules.
func (Device) TableName() string { return "devices" }

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
