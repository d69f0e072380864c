package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxSNLen and the other limits match the column widths of tb_status and devices.
const (
	MaxSNLen   = 32
	MaxPosLen  = 32
	MaxCityLen = 16
	MaxTypeLen = 16
)

// Report is one terminal status report. The JSON names are the terminal's wire names
// (fixtures/status.json); the columns of tb_status and devices are the seed's (see Status).
type Report struct {
	SN     string `json:"sn"`
	Pos    string `json:"pos"`
	City   string `json:"city"`
	Type   string `json:"id"`
	Unum1  uint32 `json:"unum1"`
	Unum2  uint32 `json:"unum2"`
	NDate  string `json:"ndate"`
	NTime  string `json:"ntime"`
	Amount uint32 `json:"amount"`
	Count  uint32 `json:"count"`
	Line   uint32 `json:"line"`
	STime  string `json:"stime"`
	CTime  string `json:"ctime"`
	Tenant uint32 `json:"tenant"`
	// AcceptedAt is when the API acknowledged the report; it is the device's last-seen time.
	AcceptedAt time.Time `json:"-"`
}

// ParseReport decodes and validates one terminal report from its JSON body. The error
// names the field at fault and is safe to show to the terminal. Unknown fields are ignored.
func ParseReport(body []byte) (Report, error) {
	var r Report
	if len(bytes.TrimSpace(body)) == 0 {
		return r, errors.New("empty body: want a JSON status report")
	}
	// The plain form terminals send is decoded by hand; anything else by encoding/json,
	// whose errors the messages are made from. Unmarshal rather than a Decoder: the body
	// is already in memory, and it refuses anything after the report, at a fifth of the
	// Decoder's garbage per report.
	if !decodeFlat(body, &r) {
		r = Report{}
		if err := json.Unmarshal(body, &r); err != nil {
			return r, jsonError(err)
		}
	}
	return r, r.Validate()
}

// jsonError rewrites a decoding error into a message that names the field.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return fmt.Errorf("bad JSON: want an object, got %s", typeErr.Value)
		}
		if typeErr.Type.Kind() == 0 || typeErr.Type.String() == "string" {
			return fmt.Errorf("%s: want a string, got %s", field, typeErr.Value)
		}
		return fmt.Errorf("%s: want a non-negative whole number below 2^32, got %s", field, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("bad JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errors.New("bad JSON: the body ends before the report does")
	default:
		return fmt.Errorf("bad JSON: %v", err)
	}
}

// Validate checks every field rule of the contract and names the first field that breaks one.
func (r *Report) Validate() error {
	if err := ValidateSN(r.SN); err != nil {
		return err
	}
	if err := CheckText("pos", r.Pos, MaxPosLen); err != nil {
		return err
	}
	if err := CheckText("city", r.City, MaxCityLen); err != nil {
		return err
	}
	if err := CheckText("id", r.Type, MaxTypeLen); err != nil {
		return err
	}
	if !validDate(r.NDate) {
		return fmt.Errorf("ndate: %q is not a valid date YYYY-MM-DD", Clip(r.NDate))
	}
	if !validClock(r.NTime) {
		return fmt.Errorf("ntime: %q is not a valid time HH:MM:SS", Clip(r.NTime))
	}
	if r.STime != "" && !validClock(r.STime) {
		return fmt.Errorf("stime: %q is not a valid time HH:MM:SS", Clip(r.STime))
	}
	if r.CTime != "" && !validClock(r.CTime) {
		return fmt.Errorf("ctime: %q is not a valid time HH:MM:SS", Clip(r.CTime))
	}
	return nil
}

// ValidateSN checks a device serial number against the contract: 1-32 of A-Z a-z 0-9 _ -.
func ValidateSN(sn string) error {
	if sn == "" {
		return fmt.Errorf("sn: required")
	}
	if len(sn) > MaxSNLen {
		return fmt.Errorf("sn: longer than %d characters", MaxSNLen)
	}
	for i := 0; i < len(sn); i++ {
		if c := sn[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("sn: only A-Z a-z 0-9 _ - are allowed")
		}
	}
	return nil
}

// validDate reports whether s is a date YYYY-MM-DD of the proleptic Gregorian calendar,
// as time.Parse(time.DateOnly) accepts it with exactly ten bytes. Parsing by hand costs a
// tenth of time.Parse, and runs for every report.
func validDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month]
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days = 29
	}
	return day <= days
}

// validClock reports whether s is a time of day HH:MM:SS, as time.Parse(time.TimeOnly)
// accepts it with exactly eight bytes.
func validClock(s string) bool {
	if len(s) != 8 || s[2] != ':' || s[5] != ':' {
		return false
	}
	h, ok1 := digits(s[0:2])
	m, ok2 := digits(s[3:5])
	sec, ok3 := digits(s[6:8])
	return ok1 && ok2 && ok3 && h < 24 && m < 60 && sec < 60
}

// digits returns the value of s, which must be ASCII decimal digits only.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// CheckText allows UTF-8 of at most max bytes in field, without control characters
// (Unicode category Cc: C0, DEL and C1).
func CheckText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s: longer than %d bytes", field, max)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%s: must be printable text", field)
	}
	return nil
}

// Clip keeps a value echoed in an error message short.
func Clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
