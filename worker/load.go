package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"monitor/model"
)

// On MySQL the batch writer streams its rows to the server with LOAD DATA LOCAL INFILE:
// the server reads tab-separated fields straight into the row, where a multi-row INSERT
// makes it parse and evaluate an expression per value. Replaying 100,000 reports of a
// burst, 4,000 a transaction, cost MariaDB 7-9 µs a report for tb_status against 15-17
// for the INSERT, and 8-12 against 15-19 for devices (loaded into a staging table, then
// upserted from it with one INSERT ... SELECT).
//
// LOCAL makes the server treat every row error as a warning: a duplicate key skips the
// row, as the INSERT's no-op update did, but a value that does not fit would be cut, not
// refused. The API validates every report (model.ParseReport), with rules narrower than
// the columns; for what comes off Redis, fitsColumns refuses a batch with a text that
// would be cut, and load a load that skipped a row for anything but a duplicate.
//
// A server that refuses LOCAL (local_infile=OFF, MySQL 8's default), or the staging table
// (an account without CREATE TEMPORARY TABLES, or no MEMORY engine), gets the INSERTs of
// literal.go instead, from the first refusal until the process restarts.

// stageDevices is the connection's temporary table that a batch's device rows are loaded
// into before the upsert into devices. MEMORY: it holds one write's rows for a moment and
// needs neither the redo log nor a transaction.
const stageDevices = "monitor_devices_stage"

// rowsPerLoad bounds the rows of one load: 4,000 device rows take 566 bytes each in the
// MEMORY table, 4 MB allocated, which max_heap_table_size (16 MB by default) must allow.
const rowsPerLoad = 4000

// loadRefusals are the errors of a server that does not allow LOAD DATA LOCAL: MySQL's
// ER_NOT_ALLOWED_COMMAND (1148) and ER_CLIENT_LOCAL_FILES_DISABLED (3948), and MariaDB's
// ER_LOAD_INFILE_CAPABILITY_DISABLED (4166).
var loadRefusals = []uint16{1148, 3948, 4166}

// stageRefusals are the errors of a server that will not create stageDevices for this
// account: no CREATE TEMPORARY TABLES privilege (1044 database, 1142 table access
// denied), or no MEMORY engine (1286 unknown, 3161 disabled).
var stageRefusals = []uint16{1044, 1142, 1286, 3161}

// errLoadRefused marks a write that failed because the server refused LOAD DATA LOCAL or
// its staging table.
var errLoadRefused = errors.New("server refuses LOAD DATA LOCAL INFILE or its staging table")

// isMySQLError reports whether err is a MySQL error numbered one of numbers.
func isMySQLError(err error, numbers []uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && slices.Contains(numbers, me.Number)
}

// loads names the driver's reader handlers: a load's data is registered under a name of
// its own for the one statement that reads it.
var loads atomic.Uint64

// loadBuffers recycles the data of loads.
var loadBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// load streams data, rows tab-separated lines, into table's columns, and returns how many
// rows the server inserted: a row whose key is already there is skipped.
func (w *BatchWriter) load(ctx context.Context, conn gorm.ConnPool, table, columns string, rows int, data []byte) (int64, error) {
	name := "monitor-load-" + strconv.FormatUint(loads.Add(1), 10)
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(data) })
	defer mysql.DeregisterReaderHandler(name)
	// No FIELDS or LINES clause: the defaults (tab, newline, backslash escapes) do not
	// depend on the SQL mode, as a quoted '\t' in the statement would.
	query := "LOAD DATA LOCAL INFILE 'Reader::" + name + "' IGNORE INTO TABLE " + table +
		" CHARACTER SET utf8mb4 (" + columns + ")"
	res, err := w.exec(ctx, conn, "LOAD DATA", table, query, rows, nil)
	if err != nil {
		if isMySQLError(err, loadRefusals) {
			return 0, fmt.Errorf("load %s: %w: %w", table, errLoadRefused, err)
		}
		return 0, fmt.Errorf("load %s: %w", table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", table, err)
	}
	if n < int64(rows) {
		// Duplicates are skipped, as they should be; any other skip is a row lost.
		if err := onlyDuplicates(ctx, conn, int64(rows)-n); err != nil {
			return 0, fmt.Errorf("load %s: %d of %d rows stored: %w", table, n, rows, err)
		}
	}
	return n, nil
}

// errWarningsHidden marks a load that skipped more rows than the warnings the server
// kept show (it keeps the first max_error_count): whether each was a duplicate cannot be
// told, so the write is done again with INSERTs, which fail on any row they cannot store.
// backend.MySQLDSN sets max_error_count to 65535, above the rows of a load, so it takes
// a DSN that sets it lower, and a batch delivered again with more rows stored before.
var errWarningsHidden = errors.New("more rows skipped than warnings kept")

// onlyDuplicates checks that the skipped rows of the last statement were all duplicate
// keys: it returns an error naming the first warning that is not a duplicate key (1062),
// and errWarningsHidden when fewer than skipped duplicates are listed. The check is the
// second line of defence, behind fitsColumns and the catch-all partitions at both ends of
// tb_status, which leave a row nothing else to be skipped for.
func onlyDuplicates(ctx context.Context, conn gorm.ConnPool, skipped int64) (err error) {
	rows, err := conn.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return fmt.Errorf("show warnings: %w", err)
	}
	defer func() {
		if cerr := rows.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("show warnings: %w", cerr)
		}
	}()
	var duplicates int64
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			return fmt.Errorf("show warnings: %w", err)
		}
		if code != 1062 {
			return fmt.Errorf("%s %d: %s", level, code, msg)
		}
		duplicates++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("show warnings: %w", err)
	}
	if duplicates < skipped {
		return fmt.Errorf("%w: %d skipped, %d duplicates listed", errWarningsHidden, skipped, duplicates)
	}
	return nil
}

// loadReports writes reports and devices by LOAD DATA and returns how many reports were
// new. Devices go through stageDevices, in sn order, so that concurrent writes take the
// devices' row locks in the same order.
func (w *BatchWriter) loadReports(ctx context.Context, conn gorm.ConnPool, reports []model.Report, devices []deviceRow) (int64, error) {
	for i := range reports {
		if err := fitsColumns(&reports[i]); err != nil {
			return 0, err
		}
	}
	buf := loadBuffers.Get().(*bytes.Buffer)
	defer loadBuffers.Put(buf)
	var inserted int64
	for i := 0; i < len(reports); i += rowsPerLoad {
		chunk := reports[i:min(i+rowsPerLoad, len(reports))]
		buf.Reset()
		for j := range chunk {
			buf.Write(appendStatusLine(buf.AvailableBuffer(), &chunk[j]))
		}
		n, err := w.load(ctx, conn, "tb_status", statusColumns, len(chunk), buf.Bytes())
		if err != nil {
			return 0, err
		}
		inserted += n
	}
	if _, err := w.exec(ctx, conn, "CREATE", stageDevices, createStage, 0, nil); err != nil {
		if isMySQLError(err, stageRefusals) {
			return 0, fmt.Errorf("create %s: %w: %w", stageDevices, errLoadRefused, err)
		}
		return 0, fmt.Errorf("create %s: %w", stageDevices, err)
	}
	for i := 0; i < len(devices); i += rowsPerLoad {
		chunk := devices[i:min(i+rowsPerLoad, len(devices))]
		// Emptied before, not after: a write that failed half-way leaves its rows.
		if _, err := w.exec(ctx, conn, "DELETE", stageDevices, "DELETE FROM "+stageDevices, 0, nil); err != nil {
			return 0, fmt.Errorf("empty %s: %w", stageDevices, err)
		}
		buf.Reset()
		for j := range chunk {
			buf.Write(appendDeviceLine(buf.AvailableBuffer(), &chunk[j]))
		}
		// stageDevices has no key: every row is loaded, or load names the warning.
		if _, err := w.load(ctx, conn, stageDevices, deviceColumns, len(chunk), buf.Bytes()); err != nil {
			return 0, err
		}
		if _, err := w.exec(ctx, conn, "INSERT", "devices", upsertStagedDevices, len(chunk), nil); err != nil {
			return 0, fmt.Errorf("upsert devices: %w", err)
		}
	}
	return inserted, nil
}

// fitsColumns refuses r when a text of it is longer than its column or not UTF-8, as a
// strict INSERT does: LOAD DATA LOCAL would store it cut. The API refuses such a report;
// this guards what comes off Redis, where the INSERT's error used to (about 0.1 µs a
// report, against 0.56 for validating it again in full). The widths are the model's
// (model.Device, model.Status); a length in bytes bounds the length in characters.
func fitsColumns(r *model.Report) error {
	for _, f := range [...]struct {
		name  string
		value string
		width int
	}{
		{"sn", r.SN, model.MaxSNLen}, {"pos", r.Pos, model.MaxPosLen}, {"city", r.City, model.MaxCityLen},
		{"id", r.Type, model.MaxTypeLen}, {"ndate", r.NDate, 10}, {"ntime", r.NTime, 8}, {"stime", r.STime, 8},
		{"ctime", r.CTime, 8},
	} {
		if len(f.value) > f.width {
			return fmt.Errorf("report %q: %s of %d bytes does not fit its column of %d", model.Clip(r.SN), f.name, len(f.value), f.width)
		}
		if !utf8.ValidString(f.value) {
			return fmt.Errorf("report %q: %s is not UTF-8", model.Clip(r.SN), f.name)
		}
	}
	return nil
}

// createStage creates stageDevices on the connection unless it is there: the columns of
// devices, no index. A temporary table neither commits the transaction nor outlives the
// connection.
const createStage = "CREATE TEMPORARY TABLE IF NOT EXISTS " + stageDevices + " ENGINE=MEMORY SELECT " +
	deviceColumns + " FROM devices LIMIT 0"

// upsertStagedDevices moves the staged rows into devices, with the same choice of the
// newest report as the INSERT of literal.go.
var upsertStagedDevices = "INSERT INTO devices (" + deviceColumns + ") SELECT " + deviceColumns +
	" FROM " + stageDevices + " ORDER BY sn" + mysqlDevicesTail

// appendStatusLine appends r as a line of tb_status's statusColumns.
func appendStatusLine(b []byte, r *model.Report) []byte {
	b = appendFields(b, r.SN, r.Pos, r.City, r.Type)
	b = appendNumbers(b, '\t', r.Unum1, r.Unum2)
	b = appendFields(b, r.NDate, r.NTime)
	b = appendNumbers(b, '\t', r.Amount, r.Count, r.Line)
	b = appendFields(b, r.STime, r.CTime)
	b = appendNumbers(b, '\t', r.Tenant)
	b = r.AcceptedAt.UTC().AppendFormat(b, "2006-01-02 15:04:05.000000")
	return append(b, '\n')
}

// appendDeviceLine appends r as a line of deviceColumns.
func appendDeviceLine(b []byte, r *deviceRow) []byte {
	b = appendFields(b, r.SN)
	b = appendNumbers(b, '\t', r.Tenant)
	b = appendFields(b, r.City, r.Type, r.Pos)
	b = appendNumbers(b, '\t', r.Line, r.Unum1, r.Unum2, r.Amount, r.Count)
	b = appendFields(b, r.NDate, r.NTime, r.STime, r.CTime)
	b = r.firstSeen.UTC().AppendFormat(b, "2006-01-02 15:04:05.000000")
	b = append(b, '\t')
	b = r.lastSeen.UTC().AppendFormat(b, "2006-01-02 15:04:05.000000")
	return append(b, '\n')
}

// appendFields appends each of ss as a field followed by a tab, escaped as LOAD DATA's
// default ESCAPED BY '\\' reads it back.
func appendFields(b []byte, ss ...string) []byte {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			switch c := s[i]; c {
			case '\\':
				b = append(b, `\\`...)
			case '\t':
				b = append(b, `\t`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case 0:
				b = append(b, `\0`...)
			default:
				b = append(b, c)
			}
		}
		b = append(b, '\t')
	}
	return b
}
