package model

import "time"

// Status is one row of tb_status, the history of reports. Its columns are the seed's,
// plus id and the time the API accepted the report. The unique key on (sn, ndate, ntime)
// makes a repeated report or a re-delivered batch land once. accepted_at has an index
// on SQLite only (see statusAcceptedIndex).
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
	AcceptedAt time.Time `gorm:"column:accepted_at;precision:6;not null"`
}

// TableName is fixed by the contract.
func (Status) TableName() string { return "tb_status" }

// Report returns the report that the row stores.
func (s *Status) Report() Report {
	return Report{
		SN: s.SN, Pos: s.PosNo, City: s.City, Type: s.TyID, Unum1: s.Unum1, Unum2: s.Unum2,
		NDate: s.NDate, NTime: s.NTime, Amount: s.Amount, Count: s.Count, Line: s.Line,
		STime: s.STime, CTime: s.CTime, Tenant: s.Tenant, AcceptedAt: s.AcceptedAt,
	}
}
