package model

import "time"

// Command types and states.
const (
	CommandUploadLogs = "upload_logs"

	CommandPending   = "pending"
	CommandDelivered = "delivered"
	CommandDone      = "done"
	CommandExpired   = "expired"
)

// Command is an order to one terminal, carried in the replies to its reports. OpenKey is
// sn:type while the command is pending or delivered and NULL once done or expired; its
// unique index keeps one open command per device and type.
type Command struct {
	ID          uint64     `gorm:"primaryKey;autoIncrement" json:"id"`
	SN          string     `gorm:"column:sn;type:varchar(32);not null;index:idx_command_sn" json:"sn"`
	Type        string     `gorm:"column:type;type:varchar(16);not null" json:"type"`
	State       string     `gorm:"column:state;type:varchar(16);not null;index:idx_command_state" json:"state"`
	Origin      string     `gorm:"column:origin;type:varchar(16);not null;default:''" json:"origin"`
	CreatedAt   time.Time  `gorm:"column:created_at;precision:6;not null" json:"createdAt"`
	ExpiresAt   time.Time  `gorm:"column:expires_at;precision:6;not null;index:idx_command_expires" json:"expiresAt"`
	DeliveredAt *time.Time `gorm:"column:delivered_at;precision:6" json:"deliveredAt,omitempty"`
	DoneAt      *time.Time `gorm:"column:done_at;precision:6" json:"doneAt,omitempty"`
	Deliveries  uint32     `gorm:"column:deliveries;not null;default:0" json:"deliveries"`
	OpenKey     *string    `gorm:"column:open_key;type:varchar(64);uniqueIndex:uk_command_open" json:"-"`
}

// TableName keeps the name independent of GORM's pluralisation rules.
func (Command) TableName() string { return "commands" }
