package model

import "time"

// Alert kinds and states.
const (
	AlertOffline = "device_offline"
	AlertUnsent  = "unsent_records"

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
}

// TableName keeps the name independent of GORM's pluralisation rules.
func (Alert) TableName() string { return "alerts" }

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
