package model

import (
	"errors"
	"time"
)

// ErrUnknownDevice means no device of that sn is known: none in devices, none in the
// live fleet state.
var ErrUnknownDevice = errors.New("unknown device")

// Who decommissions a device: an operator (DELETE /api/v1/devices/{sn}) or the sweep,
// for silence past MONITOR_FORGET_AFTER.
const (
	DecommissionedByOperator    = "operator"
	DecommissionedByForgetAfter = "forget_after"
)

// Device is one terminal with its newest report by the report's own (ndate, ntime), so a
// late, older report never replaces it. LastSeen is the latest time the API accepted any
// of the device's reports, never when a worker wrote it, so a backlog does not make
// devices look silent.
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

// Report returns the device's newest report.
func (d *Device) Report() Report {
	return Report{
		SN: d.SN, Pos: d.PosNo, City: d.City, Type: d.TyID, Unum1: d.Unum1, Unum2: d.Unum2,
		NDate: d.NDate, NTime: d.NTime, Amount: d.Amount, Count: d.Count, Line: d.Line,
		STime: d.STime, CTime: d.CTime, Tenant: d.Tenant, AcceptedAt: d.LastSeen,
	}
}
