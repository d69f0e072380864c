package model_test

import (
	"errors"
	"strings"
	"testing"

	"monitor/internal/testenv"
	"monitor/model"
)

// dropAll leaves db without any table of monitor.
func dropAll(t *testing.T, db *testenv.Database) {
	t.Helper()
	for _, table := range []string{"schema_version", "tb_status", "devices", "alerts", "commands", "logs"} {
		if err := db.DB.Migrator().DropTable(table); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckSchema(t *testing.T) {
	db := testenv.NewDB(t)
	if err := model.CheckSchema(db.DB); err != nil {
		t.Fatalf("after Migrate: %v", err)
	}

	// Tables of a version that recorded no schema version: older.
	if err := db.DB.Migrator().DropTable("schema_version"); err != nil {
		t.Fatal(err)
	}
	err := model.CheckSchema(db.DB)
	if !errors.Is(err, model.ErrSchemaOutdated) || !strings.Contains(err.Error(), "monitor migrate") {
		t.Fatalf("without schema_version: %v, want ErrSchemaOutdated naming monitor migrate", err)
	}
	if err := model.Migrate(db.DB, model.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := model.CheckSchema(db.DB); err != nil {
		t.Fatalf("after migrating again: %v", err)
	}

	// A newer build's schema: CheckSchema and Migrate both refuse it, saying which.
	if err := db.DB.Exec("UPDATE schema_version SET version = ?", model.SchemaVersion+1).Error; err != nil {
		t.Fatal(err)
	}
	err = model.CheckSchema(db.DB)
	if !errors.Is(err, model.ErrSchemaTooNew) || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("newer schema: %v, want ErrSchemaTooNew", err)
	}
	if err := model.Migrate(db.DB, model.MigrateOptions{}); !errors.Is(err, model.ErrSchemaTooNew) {
		t.Fatalf("Migrate of a newer schema: %v, want ErrSchemaTooNew", err)
	}

	// No schema at all.
	dropAll(t, db)
	err = model.CheckSchema(db.DB)
	if !errors.Is(err, model.ErrSchemaMissing) || !strings.Contains(err.Error(), "monitor migrate") {
		t.Fatalf("empty database: %v, want ErrSchemaMissing naming monitor migrate", err)
	}
	if err := model.Migrate(db.DB, model.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := model.CheckSchema(db.DB); err != nil {
		t.Fatalf("after migrating the empty database: %v", err)
	}
}
