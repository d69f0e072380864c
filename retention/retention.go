// Package retention keeps the stored history bounded: it drops old days of reports
// (MySQL, where tb_status is partitioned by day) or deletes them (SQLite), and deletes
// closed commands, resolved alerts and uploaded logs, a small chunk at a time.
package retention

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"monitor/model"
)

// Chunk is how many rows one DELETE removes; Pause is the rest between two, so that
// ingest's inserts into tb_status never wait long behind the retention's locks.
const (
	Chunk = 5000
	Pause = 50 * time.Millisecond
)

// Days says how long each kind of record is kept.
type Days struct {
	Status, Alerts, Commands, Logs int
}

// Job is the daily retention job.
type Job struct {
	db     *gorm.DB
	logDir string
	keep   Days
	log    *slog.Logger
	now    func() time.Time
}

// Options configures the retention job.
type Options struct {
	// LogDir holds the uploaded log files; required.
	LogDir string
	// Keep says how many days each kind of record is kept; every field at least 1.
	Keep Days
	// Logger receives what each run deleted; nil discards it.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// New returns the retention job over db.
func New(db *gorm.DB, opt Options) (*Job, error) {
	if opt.LogDir == "" {
		return nil, errors.New("retention: no log directory")
	}
	if min(opt.Keep.Status, opt.Keep.Alerts, opt.Keep.Commands, opt.Keep.Logs) < 1 {
		return nil, fmt.Errorf("retention: every kind of record must be kept at least a day, got %+v", opt.Keep)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Job{db: db, logDir: opt.LogDir, keep: opt.Keep, log: opt.Logger, now: opt.Now}, nil
}

// Deleted counts what one run removed. Status counts the history rows deleted row by
// row (SQLite; on MySQL the future-dated ones, see Run); StatusPartitions the days of
// history dropped whole (MySQL), whose rows are not counted: counting would read them.
type Deleted struct {
	Status, Alerts, Commands, Logs, TempFiles int64
	StatusPartitions                          int
}

// ProcessTask is the asynq handler of task.TypeRetention.
func (j *Job) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	d, err := j.Run(ctx)
	j.log.InfoContext(ctx, "retention", "status_partitions", d.StatusPartitions, "status_rows", d.Status, "alerts", d.Alerts, "commands", d.Commands,
		"logs", d.Logs, "temp_files", d.TempFiles, "err", err)
	return err
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// Run deletes everything older than its retention once.
func (j *Job) Run(ctx context.Context) (Deleted, error) {
	var d Deleted
	now := j.now().UTC()
	var err error
	if d.StatusPartitions, d.Status, err = j.status(ctx, now); err != nil {
		return d, err
	}
	if d.Alerts, err = j.chunked(ctx, "alerts", "state = 'resolved' AND ends_at < ?", now.Add(-days(j.keep.Alerts))); err != nil {
		return d, err
	}
	if d.Commands, err = j.chunked(ctx, "commands", "open_key IS NULL AND created_at < ?", now.Add(-days(j.keep.Commands))); err != nil {
		return d, err
	}
	if d.Logs, err = j.logs(ctx, now.Add(-days(j.keep.Logs))); err != nil {
		return d, err
	}
	d.TempFiles, err = j.tempFiles(now.Add(-24 * time.Hour))
	return d, err
}

// status removes the history older than its retention. On a partitioned tb_status
// (MySQL) it first creates the partitions of the days ahead, then drops the days whose
// reports are all dated before the cutoff: no row is read, so it takes milliseconds
// whatever their number, and ingest's inserts into other days never wait on it. Reports
// dated past the newest day (a terminal's clock far ahead) sit in the catch-all
// partition until their day comes; those accepted before the cutoff are deleted row by
// row, so a broken clock cannot keep them forever. Without partitions (SQLite) it
// deletes by acceptance time, a chunk at a time.
func (j *Job) status(ctx context.Context, now time.Time) (partitions int, rows int64, err error) {
	cutoff := now.Add(-days(j.keep.Status))
	if _, err := model.EnsureStatusPartitions(ctx, j.db, now); err != nil {
		return 0, 0, err
	}
	dropped, err := model.DropStatusPartitions(ctx, j.db, cutoff)
	if errors.Is(err, model.ErrNotPartitioned) {
		rows, err = j.chunked(ctx, "tb_status", "accepted_at < ?", cutoff)
		return 0, rows, err
	}
	if err != nil {
		return 0, 0, err
	}
	if len(dropped) > 0 {
		j.log.Info("dropped tb_status partitions", "partitions", dropped, "before", cutoff.Format(time.DateOnly))
	}
	rows, err = j.chunked(ctx, "tb_status PARTITION ("+model.FuturePartition+")", "accepted_at < ?", cutoff)
	return len(dropped), rows, err
}

// chunked deletes the rows of table matching where, Chunk rows per statement in id order.
func (j *Job) chunked(ctx context.Context, table, where string, args ...any) (int64, error) {
	var q string
	if j.db.Dialector.Name() == "mysql" {
		q = "DELETE FROM " + table + " WHERE " + where + " ORDER BY id LIMIT " + fmt.Sprint(Chunk)
	} else {
		q = "DELETE FROM " + table + " WHERE id IN (SELECT id FROM " + table + " WHERE " + where +
			" ORDER BY id LIMIT " + fmt.Sprint(Chunk) + ")"
	}
	var total int64
	for {
		res := j.db.WithContext(ctx).Exec(q, args...)
		if res.Error != nil {
			return total, fmt.Errorf("delete old %s: %w", table, res.Error)
		}
		total += res.RowsAffected
		if res.RowsAffected < Chunk {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, fmt.Errorf("delete old %s: %w", table, ctx.Err())
		case <-time.After(Pause):
		}
	}
}

// logs deletes old uploaded logs: the file first, then its row, so a row never names a
// file that is gone for long and no file outlives its row unnoticed.
func (j *Job) logs(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		var old []model.Log
		if err := j.db.WithContext(ctx).Where("created_at < ?", cutoff).Order("id").Limit(500).Find(&old).Error; err != nil {
			return total, fmt.Errorf("read old logs: %w", err)
		}
		if len(old) == 0 {
			return total, nil
		}
		ids := make([]uint64, 0, len(old))
		for _, l := range old {
			if err := os.Remove(filepath.Join(j.logDir, filepath.Clean("/"+l.Path))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return total, fmt.Errorf("remove log file: %w", err)
			}
			ids = append(ids, l.ID)
		}
		res := j.db.WithContext(ctx).Where("id IN ?", ids).Delete(&model.Log{})
		if res.Error != nil {
			return total, fmt.Errorf("delete old logs: %w", res.Error)
		}
		total += res.RowsAffected
	}
}

// tempFiles removes uploads abandoned mid-way by a crash, older than cutoff.
func (j *Job) tempFiles(cutoff time.Time) (int64, error) {
	entries, err := os.ReadDir(j.logDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read log dir: %w", err)
	}
	var n int64
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), model.LogTempPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(j.logDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("remove abandoned upload: %w", err)
		}
		n++
	}
	return n, nil
}
