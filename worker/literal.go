package worker

import (
	"strconv"
	"strings"
	"time"
	"unsafe"

	"monitor/model"
)

// The batch's statements on MySQL carry their values in the SQL text, written here
// straight into one buffer per statement. Passing 15,000 values as arguments instead cost
// the worker an interface per value, database/sql's conversion of each, and the driver's
// interpolation or binary packet of them: about 40 % of everything monitor allocated in
// a burst, and the GC work that came with it. The values need no escaping rules that
// depend on the server's SQL mode: a string of plain printable ASCII without quote or
// backslash is written as it is, any other as a utf8mb4 hex literal.

// mysqlStatusTail and mysqlDevicesTail end the two statements. A no-op update, unlike
// INSERT IGNORE, still fails on bad data; it affects 0 rows for a duplicate, so
// RowsAffected counts the new rows.
const mysqlStatusTail = " ON DUPLICATE KEY UPDATE id=id"

var mysqlDevicesTail = func() string {
	var b strings.Builder
	b.WriteString(" ON DUPLICATE KEY UPDATE ")
	for _, c := range deviceUpdated {
		b.WriteString(c + "=IF(" + deviceNewer + ",VALUES(" + c + "),devices." + c + "),")
	}
	b.WriteString("first_seen=LEAST(devices.first_seen,VALUES(first_seen)),last_seen=GREATEST(devices.last_seen,VALUES(last_seen))")
	return b.String()
}()

// mysqlInsertStatus returns the INSERT of rs into tb_status with their values in the text.
func mysqlInsertStatus(rs []model.Report) string {
	return literalRows("INSERT INTO tb_status ("+statusColumns+") VALUES ", mysqlStatusTail, rs,
		func(r *model.Report) int { return 130 + reportTextSize(r) },
		func(b []byte, r *model.Report) []byte {
			b = appendText(b, r.SN, r.Pos, r.City, r.Type)
			b = appendNumbers(b, ',', r.Unum1, r.Unum2)
			b = appendText(b, r.NDate, r.NTime)
			b = appendNumbers(b, ',', r.Amount, r.Count, r.Line)
			b = appendText(b, r.STime, r.CTime)
			b = appendNumbers(b, ',', r.Tenant)
			return appendTime(b, r.AcceptedAt)
		})
}

// mysqlUpsertDevices returns the upsert of rs into devices with their values in the text.
func mysqlUpsertDevices(rs []deviceRow) string {
	return literalRows("INSERT INTO devices ("+deviceColumns+") VALUES ", mysqlDevicesTail, rs,
		func(r *deviceRow) int { return 160 + reportTextSize(&r.Report) },
		func(b []byte, r *deviceRow) []byte {
			b = appendText(b, r.SN)
			b = appendNumbers(b, ',', r.Tenant)
			b = appendText(b, r.City, r.Type, r.Pos)
			b = appendNumbers(b, ',', r.Line, r.Unum1, r.Unum2, r.Amount, r.Count)
			b = appendText(b, r.NDate, r.NTime, r.STime, r.CTime)
			b = appendTime(b, r.firstSeen)
			b = append(b, ',')
			return appendTime(b, r.lastSeen)
		})
}

// literalRows returns head, then each row of rs as row writes it in parentheses, comma
// separated, then tail: one statement in one buffer sized by rowSize, a bound of what
// row writes.
func literalRows[T any](head, tail string, rs []T, rowSize func(*T) int, row func([]byte, *T) []byte) string {
	size := len(head) + len(tail)
	for i := range rs {
		size += rowSize(&rs[i])
	}
	b := make([]byte, 0, size)
	b = append(b, head...)
	for i := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '(')
		b = row(b, &rs[i])
		b = append(b, ')')
	}
	b = append(b, tail...)
	return bytesString(b)
}

// reportTextSize bounds what appendText writes for r's strings.
func reportTextSize(r *model.Report) int {
	return textSize(r.SN, r.Pos, r.City, r.Type, r.NDate, r.NTime, r.STime, r.CTime)
}

// bytesString returns b as a string without copying it: b is never written again.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// textSize bounds what appendText writes for ss, but for the commas.
func textSize(ss ...string) int {
	n := 0
	for _, s := range ss {
		n += 2*len(s) + len("_utf8mb4 X''")
	}
	return n
}

// appendText appends each of ss as a string literal followed by a comma.
func appendText(b []byte, ss ...string) []byte {
	for _, s := range ss {
		b = appendString(b, s)
		b = append(b, ',')
	}
	return b
}

// appendNumbers appends each of ns followed by sep.
func appendNumbers(b []byte, sep byte, ns ...uint32) []byte {
	for _, n := range ns {
		b = strconv.AppendUint(b, uint64(n), 10)
		b = append(b, sep)
	}
	return b
}

// appendString appends s as a MySQL string literal whose meaning does not depend on the
// SQL mode (NO_BACKSLASH_ESCAPES) or the connection's character set.
func appendString(b []byte, s string) []byte {
	if plain(s) {
		b = append(b, '\'')
		b = append(b, s...)
		return append(b, '\'')
	}
	const hex = "0123456789ABCDEF"
	b = append(b, "_utf8mb4 X'"...)
	for i := 0; i < len(s); i++ {
		b = append(b, hex[s[i]>>4], hex[s[i]&0xf])
	}
	return append(b, '\'')
}

// plain reports whether s is printable ASCII without a quote or a backslash.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '\'' || c == '\\' {
			return false
		}
	}
	return true
}

// appendTime appends t in UTC as a DATETIME(6) literal, as the driver's interpolation
// would with the UTC location the DSN sets.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '\'')
	b = t.UTC().AppendFormat(b, "2006-01-02 15:04:05.000000")
	return append(b, '\'')
}
