package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// Alert kinds and states.
const (
	AlertOffline = "device_offline"
	AlertUnsent  = "unsent_records"
	// AlertIntakeDown is the meta-alert of our own intake being down or degraded: no
	// device's silence counts meanwhile. Its sn, tenant and city are empty.
	AlertIntakeDown = "intake_down"

	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// Alert is one alert with its lifecycle: firing from StartsAt, resolved at EndsAt.
// FiringKey is kind:sn while the alert fires and NULL once resolved; its unique index
// lets the database itself refuse a second firing alert for one device and kind (NULLs
// never collide, on MySQL/MariaDB as on SQLite).
type Alert struct {
	ID        uint64     `gorm:"primaryKey;autoIncrement" json:"id"`
	Kind      string     `gorm:"column:kind;type:varchar(32);not null;index:idx_alert_kind_state,priority:1" json:"kind"`
	SN        string     `gorm:"column:sn;type:varchar(32);not null;index:idx_alert_sn" json:"sn"`
	Tenant    uint32     `gorm:"column:tenant;not null;default:0" json:"tenant"`
	City      string     `gorm:"column:city;type:varchar(16);not null;default:''" json:"city"`
	State     string     `gorm:"column:state;type:varchar(16);not null;index:idx_alert_kind_state,priority:2;index:idx_alert_state" json:"state"`
	StartsAt  time.Time  `gorm:"column:starts_at;precision:6;not null" json:"startsAt"`
	EndsAt    *time.Time `gorm:"column:ends_at;precision:6;index:idx_alert_ends" json:"endsAt,omitempty"`
	Value     float64    `gorm:"column:value;not null;default:0" json:"value"`
	FiringKey *string    `gorm:"column:firing_key;type:varchar(80);uniqueIndex:uk_alert_firing" json:"-"`
	// NotifiedAt is when the sweep last enqueued a firing notice of the alert; NULL when
	// none was (no webhook configured). MONITOR_ALERT_REPEAT_EVERY counts from it.
	NotifiedAt *time.Time `gorm:"column:notified_at;precision:6" json:"notifiedAt,omitempty"`
	// Decommissioned is true on an alert resolved because its device was decommissioned
	// (DELETE /api/v1/devices/{sn} or MONITOR_FORGET_AFTER), not because it recovered.
	Decommissioned bool `gorm:"column:decommissioned;not null;default:false" json:"decommissioned,omitempty"`
}

// TableName keeps the name independent of GORM's pluralisation rules.
func (Alert) TableName() string { return "alerts" }

// Fingerprint identifies one episode of an alert: the same for its firing and resolved
// notices, and different for a later episode of the same device and kind. It hashes the
// kind, the sn and the start to the microsecond (the precision the database keeps).
func (a Alert) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte(a.Kind))
	h.Write([]byte{0})
	h.Write([]byte(a.SN))
	h.Write([]byte{0})
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(a.StartsAt.UnixMicro())))
	return hex.EncodeToString(h.Sum(nil)[:8])
}
