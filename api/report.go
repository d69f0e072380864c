package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"monitor/task"
)

// maxSNLen and the other limits match the column widths of tb_status.
const (
	maxSNLen   = 32
	maxPosLen  = 32
	maxCityLen = 16
	maxTypeLen = 16
)

// DecodeReport parses and validates one terminal report. The error names the field at
// fault and is safe to show to the terminal. Unknown fields are ignored.
func DecodeReport(body []byte) (task.Report, error) {
	var r task.Report
	if len(bytes.TrimSpace(body)) == 0 {
		return r, errors.New("empty body: want a JSON status report")
	}
	// Unmarshal rather than a Decoder: the body is already in memory, and it refuses
	// anything after the report, at a fifth of the Decoder's garbage per report.
	if err := json.Unmarshal(body, &r); err != nil {
		return r, jsonError(err)
	}
	return r, ValidateReport(&r)
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

// ValidateReport checks every field rule of the contract.
func ValidateReport(r *task.Report) error {
	if err := validSN(r.SN); err != nil {
		return err
	}
	if err := checkText("pos", r.Pos, maxPosLen); err != nil {
		return err
	}
	if err := checkText("city", r.City, maxCityLen); err != nil {
		return err
	}
	if err := checkText("id", r.Type, maxTypeLen); err != nil {
		return err
	}
	if _, err := time.Parse(time.DateOnly, r.NDate); err != nil || len(r.NDate) != 10 {
		return fmt.Errorf("ndate: %q is not a valid date YYYY-MM-DD", clip(r.NDate))
	}
	if !validClock(r.NTime) {
		return fmt.Errorf("ntime: %q is not a valid time HH:MM:SS", clip(r.NTime))
	}
	if r.STime != "" && !validClock(r.STime) {
		return fmt.Errorf("stime: %q is not a valid time HH:MM:SS", clip(r.STime))
	}
	if r.CTime != "" && !validClock(r.CTime) {
		return fmt.Errorf("ctime: %q is not a valid time HH:MM:SS", clip(r.CTime))
	}
	return nil
}

func validClock(s string) bool {
	_, err := time.Parse(time.TimeOnly, s)
	return err == nil && len(s) == 8
}

// checkText allows printable UTF-8 up to max bytes.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s: longer than %d bytes", field, max)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%s: must be printable text", field)
	}
	return nil
}

// clip keeps an echoed value short in error messages.
func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
