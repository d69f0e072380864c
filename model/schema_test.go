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

// TestAcceptedAtIndexOnlyOnSQLite: a MySQL schema that an older build migrated has an
// index on tb_status.accepted_at, which every report paid for; Migrate drops it. SQLite,
// whose retention deletes by accepted_at across the table, keeps one.
func TestAcceptedAtIndexOnlyOnSQLite(t *testing.T) {
	db := testenv.NewDB(t)
	mysql := db.DB.Dialector.Name() == "mysql"
	has := func() bool { return db.DB.Migrator().HasIndex("tb_status", "idx_status_accepted") }
	if has() == mysql {
		t.Fatalf("after Migrate on %s: index on accepted_at %v", db.DB.Dialector.Name(), has())
	}
	if mysql {
		if err := db.DB.Exec("CREATE INDEX idx_status_accepted ON tb_status (accepted_at)").Error; err != nil {
			t.Fatal(err)
		}
	} else if err := db.DB.Exec("DROP INDEX idx_status_accepted").Error; err != nil {
		t.Fatal(err)
	}
	if err := model.Migrate(db.DB, model.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if has() == mysql {
		t.Fatalf("after migrating again on %s: index on accepted_at %v", db.DB.Dialector.Name(), has())
	}
}
