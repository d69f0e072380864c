package model

import (
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// SchemaVersion is the version of the schema this build creates and runs on. Raise it
// with every change to the tables that an older binary would not handle, so a process
// started against a database that `monitor migrate` has not brought up to date refuses
// to run instead of failing request by request.
const SchemaVersion = 3

// schemaVersion is the one row of table schema_version: the version Migrate last wrote.
type schemaVersion struct {
	ID      int `gorm:"primaryKey;autoIncrement:false"`
	Version int `gorm:"not null"`
}

func (schemaVersion) TableName() string { return "schema_version" }

var (
	// ErrSchemaMissing: the database holds no monitor schema; `monitor migrate` creates it.
	ErrSchemaMissing = errors.New("the database has no monitor schema: run `monitor migrate` first")
	// ErrSchemaOutdated: the schema is older than this build; `monitor migrate` upgrades it.
	ErrSchemaOutdated = errors.New("the database schema is older than this build: run `monitor migrate` first")
	// ErrSchemaTooNew: a newer build migrated the database; this one must not run on it.
	ErrSchemaTooNew = errors.New("the database schema is newer than this build knows: run the newer monitor, or restore a database this build migrated")
)

// readSchemaVersion returns the version recorded in db: 0 when tables of monitor exist
// without a recorded version (a database migrated before versions were recorded), and
// ErrSchemaMissing when there is no monitor schema at all.
func readSchemaVersion(db *gorm.DB) (int, error) {
	m := db.Migrator()
	if !m.HasTable(&schemaVersion{}) {
		if m.HasTable(&Status{}) {
			return 0, nil
		}
		return 0, ErrSchemaMissing
	}
	var rows []schemaVersion
	if err := db.Where("id = ?", 1).Limit(1).Find(&rows).Error; err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	return rows[0].Version, nil
}

// CheckSchema returns nil when db holds exactly the schema version this build runs on,
// and otherwise an error that says what is wrong and what to do: ErrSchemaMissing or
// ErrSchemaOutdated (both name `monitor migrate`), or ErrSchemaTooNew.
func CheckSchema(db *gorm.DB) error {
	have, err := readSchemaVersion(db)
	if err != nil {
		return err
	}
	switch {
	case have < SchemaVersion:
		return fmt.Errorf("%w (schema version %d, this build needs %d)", ErrSchemaOutdated, have, SchemaVersion)
	case have > SchemaVersion:
		return fmt.Errorf("%w (schema version %d, this build knows up to %d)", ErrSchemaTooNew, have, SchemaVersion)
	}
	return nil
}

// checkMigratable refuses to migrate a schema that a newer build wrote: migrating it
// down would record an older version over tables this build does not know.
func checkMigratable(db *gorm.DB) error {
	have, err := readSchemaVersion(db)
	if errors.Is(err, ErrSchemaMissing) {
		return nil
	}
	if err != nil {
		return err
	}
	if have > SchemaVersion {
		return fmt.Errorf("%w (schema version %d, this build knows up to %d)", ErrSchemaTooNew, have, SchemaVersion)
	}
	return nil
}

// recordSchemaVersion writes SchemaVersion as the one row of schema_version.
func recordSchemaVersion(db *gorm.DB) error {
	if err := db.AutoMigrate(&schemaVersion{}); err != nil {
		return err
	}
	row := schemaVersion{ID: 1, Version: SchemaVersion}
	return db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"version"}),
	}).Create(&row).Error
}
