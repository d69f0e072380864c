package model

import "time"

// Log is one uploaded log file. Path is relative to the log directory and chosen by the
// server, never taken from the request.
type Log struct {
	ID        uint64    `gorm:"primaryKey;autoIncrement" json:"id"`
	SN        string    `gorm:"column:sn;type:varchar(32);not null;index:idx_log_sn" json:"sn"`
	CommandID uint64    `gorm:"column:command_id;not null;uniqueIndex:uk_log_command" json:"commandId"`
	Path      string    `gorm:"column:path;type:varchar(255);not null" json:"-"`
	Size      int64     `gorm:"column:size;not null" json:"size"`
	SHA256    string    `gorm:"column:sha256;type:char(64);not null" json:"sha256"`
	CreatedAt time.Time `gorm:"column:created_at;precision:6;not null;index:idx_log_created" json:"createdAt"`
}

// TableName keeps the name independent of GORM's pluralisation rules.
func (Log) TableName() string { return "logs" }

// LogTempPrefix starts the name of a log file still being uploaded. The API writes an
// upload under such a name and renames it when it is complete; retention deletes the
// ones an interrupted upload left behind.
const LogTempPrefix = ".upload-"
