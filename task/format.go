package task

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"monitor/model"
)

// Bounds of FormatPayload's text, so a large batch or notification stays readable.
const (
	// FormatMaxBatchItems is the number of batch items listed; the count covers all of them.
	FormatMaxBatchItems = 50
	// FormatMaxTextBytes bounds the text of a notification or periodic payload.
	FormatMaxTextBytes = 4096
)

// FormatPayload renders the payload of a task of type taskType for people, as asynqmon
// shows it: a status:report as the report's JSON, a status:batch as its count and the
// sn, ndate and ntime of each item (at most FormatMaxBatchItems), an alert:notify as its
// JSON body and a periodic job's payload as its text (both at most FormatMaxTextBytes).
// It never panics: a payload that does not decode is shown as undecodable, with why.
func FormatPayload(taskType string, payload []byte) string {
	switch taskType {
	case TypeStatusReport:
		return formatReport(payload)
	case TypeStatusBatch:
		return formatBatch(payload)
	}
	// alert:notify carries the webhook's JSON body, job:log_pull the selector text and the
	// other periodic jobs nothing.
	return formatText(payload)
}

// reportJSON is a report with the time the API accepted it, which the JSON of
// model.Report leaves out.
type reportJSON struct {
	model.Report
	AcceptedAt time.Time `json:"acceptedAt"`
}

func formatReport(b []byte) string {
	r, rest, err := DecodeReport(b)
	if err != nil {
		return undecodable(TypeStatusReport, len(b), err)
	}
	if len(rest) > 0 {
		return undecodable(TypeStatusReport, len(b), fmt.Errorf("%d bytes after the report", len(rest)))
	}
	out, err := json.MarshalIndent(reportJSON{Report: r, AcceptedAt: r.AcceptedAt}, "", "  ")
	if err != nil {
		return undecodable(TypeStatusReport, len(b), err)
	}
	return string(out)
}

// batchItem is one batch item as FormatPayload lists it.
type batchItem struct {
	SN    string `json:"sn,omitempty"`
	NDate string `json:"ndate,omitempty"`
	NTime string `json:"ntime,omitempty"`
	Error string `json:"error,omitempty"`
}

func formatBatch(b []byte) string {
	var view struct {
		Count  int         `json:"count"`
		Listed int         `json:"listed"`
		Items  []batchItem `json:"items"`
		Error  string      `json:"error,omitempty"`
	}
	view.Items = []batchItem{}
	err := SplitBatch(b, func(item []byte) {
		view.Count++
		if len(view.Items) == FormatMaxBatchItems {
			return
		}
		r, rest, err := DecodeReport(item)
		switch {
		case err != nil:
			view.Items = append(view.Items, batchItem{Error: "undecodable: " + err.Error()})
		case len(rest) > 0:
			view.Items = append(view.Items, batchItem{Error: "undecodable: " + strconv.Itoa(len(rest)) + " bytes after the report"})
		default:
			view.Items = append(view.Items, batchItem{SN: r.SN, NDate: r.NDate, NTime: r.NTime})
		}
	})
	view.Listed = len(view.Items)
	if err != nil {
		view.Error = fmt.Sprintf("undecodable after item %d of %d bytes: %v", view.Count, len(b), err)
	}
	out, err := json.MarshalIndent(view, "", "  ")
	if err != nil {
		return undecodable(TypeStatusBatch, len(b), err)
	}
	return string(out)
}

// formatText shows a payload that is text as it is, cut at FormatMaxTextBytes.
func formatText(b []byte) string {
	if len(b) == 0 {
		return "(no payload)"
	}
	if !utf8.Valid(b) {
		return fmt.Sprintf("undecodable: %d bytes that are not UTF-8 text", len(b))
	}
	s := string(b)
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && !unicode.IsSpace(r) }) >= 0 {
		return fmt.Sprintf("undecodable: %d bytes of text with control characters", len(b))
	}
	if len(s) <= FormatMaxTextBytes {
		return s
	}
	cut := FormatMaxTextBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n… (%d of %d bytes shown)", cut, len(s))
}

func undecodable(taskType string, n int, err error) string {
	return fmt.Sprintf("undecodable %s payload of %d bytes: %v", taskType, n, err)
}
