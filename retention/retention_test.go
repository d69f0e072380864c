package retention_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"monitor/internal/testenv"
	"monitor/model"
	"monitor/retention"
)

func count(t *testing.T, db *gorm.DB, m any, where string, args ...any) []uint64 {
	t.Helper()
	var ids []uint64
	q := db.Model(m)
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Order("id").Pluck("id", &ids).Error; err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestRetentionDeletesOnlyWhatIsOld(t *testing.T) {
	db := testenv.NewDB(t).DB
	dir := t.TempDir()
	// The real clock: on MySQL, Migrate made tb_status's daily partitions around today.
	now := time.Now().UTC()
	day := 24 * time.Hour
	job, err := retention.New(db, retention.Options{LogDir: dir, Keep: retention.Days{Status: 90, Alerts: 30, Commands: 30, Logs: 7},
		Logger: testenv.Logger(t), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}

	// 12,000 old reports (more than two chunks) and a few recent ones.
	var rows []model.Status
	for i := range 12_000 {
		rows = append(rows, model.Status{SN: "OLD", NDate: now.Add(-91 * day).Format(time.DateOnly), NTime: time.Duration(i * int(time.Second)).String(),
			AcceptedAt: now.Add(-91 * day)})
	}
	for i := range 3 {
		rows = append(rows, model.Status{SN: "NEW", NDate: now.Add(-89 * day).Format(time.DateOnly), NTime: time.Duration(i * int(time.Second)).String(),
			AcceptedAt: now.Add(-89 * day)})
	}
	if err := db.CreateInBatches(rows, 1000).Error; err != nil {
		t.Fatal(err)
	}
	old, recent := now.Add(-31*day), now.Add(-29*day)
	key := "device_offline:F"
	alerts := []model.Alert{
		{Kind: model.AlertOffline, SN: "R_OLD", State: model.AlertResolved, StartsAt: old, EndsAt: &old},
		{Kind: model.AlertOffline, SN: "R_NEW", State: model.AlertResolved, StartsAt: old, EndsAt: &recent},
		{Kind: model.AlertOffline, SN: "F", State: model.AlertFiring, StartsAt: now.Add(-100 * day), FiringKey: &key},
	}
	if err := db.Create(&alerts).Error; err != nil {
		t.Fatal(err)
	}
	openKey := "OPEN:upload_logs"
	cmds := []model.Command{
		{SN: "EXPIRED", Type: "upload_logs", State: model.CommandExpired, CreatedAt: old, ExpiresAt: old},
		{SN: "DONE", Type: "upload_logs", State: model.CommandDone, CreatedAt: recent, ExpiresAt: recent},
		{SN: "OPEN", Type: "upload_logs", State: model.CommandPending, CreatedAt: old, ExpiresAt: now.Add(day), OpenKey: &openKey},
	}
	if err := db.Create(&cmds).Error; err != nil {
		t.Fatal(err)
	}
	logs := []model.Log{
		{SN: "A", CommandID: 1, Path: "old.log", CreatedAt: now.Add(-8 * day)},
		{SN: "A", CommandID: 2, Path: "new.log", CreatedAt: now.Add(-6 * day)},
	}
	if err := db.Create(&logs).Error; err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"old.log", "new.log", model.LogTempPrefix + "crashed", model.LogTempPrefix + "inflight"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("log"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The crashed upload is two days old; the one in flight was just started.
	for name, mtime := range map[string]time.Time{"crashed": now.Add(-48 * time.Hour), "inflight": now.Add(-time.Minute)} {
		if err := os.Chtimes(filepath.Join(dir, model.LogTempPrefix+name), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}

	d, err := job.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// MySQL drops the old day's partition (the oldest, which holds every older date);
	// SQLite deletes the rows.
	want := retention.Deleted{Status: 12_000, Alerts: 1, Commands: 1, Logs: 1, TempFiles: 1}
	if db.Dialector.Name() == "mysql" {
		want.Status, want.StatusPartitions = 0, 1
	}
	if d != want {
		t.Fatalf("deleted %+v, want %+v", d, want)
	}
	if n := len(count(t, db, &model.Status{}, "")); n != 3 {
		t.Fatalf("tb_status keeps %d rows, want the 3 recent", n)
	}
	var sns []string
	if err := db.Model(&model.Alert{}).Order("sn").Pluck("sn", &sns).Error; err != nil || !slices.Equal(sns, []string{"F", "R_NEW"}) {
		t.Fatalf("alerts kept %v (%v)", sns, err)
	}
	if err := db.Model(&model.Command{}).Order("sn").Pluck("sn", &sns).Error; err != nil || !slices.Equal(sns, []string{"DONE", "OPEN"}) {
		t.Fatalf("commands kept %v (%v)", sns, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{model.LogTempPrefix + "inflight", "new.log"}) {
		t.Fatalf("log dir keeps %v", names)
	}
	if ids := count(t, db, &model.Log{}, ""); len(ids) != 1 || ids[0] != logs[1].ID {
		t.Fatalf("log rows kept %v", ids)
	}
	// A second run finds nothing more.
	if d, err := job.Run(context.Background()); err != nil || d != (retention.Deleted{}) {
		t.Fatalf("second run deleted %+v (%v)", d, err)
	}
}
