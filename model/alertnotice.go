package model

import "time"

// AlertNotice is the outbox of alert notifications: a firing or resolved notice of an
// alert that the sweep recorded in the same transaction as the alert's change and has
// not yet handed to the notification groups on Redis. A notice row leaves only once
// its notice is pending there (or sent), so a failure in between (Redis down, a crash)
// delays the notification to a later sweep instead of losing it.
type AlertNotice struct {
	ID      uint64 `gorm:"primaryKey;autoIncrement"`
	AlertID uint64 `gorm:"column:alert_id;not null;index:idx_alert_notice_alert"`
	// Status is the notice's: AlertFiring or AlertResolved.
	Status    string    `gorm:"column:status;type:varchar(16);not null"`
	CreatedAt time.Time `gorm:"column:created_at;precision:6;not null"`
}

// TableName keeps the name independent of GORM's pluralisation rules.
func (AlertNotice) TableName() string { return "alert_notices" }
