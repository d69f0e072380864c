package task

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"monitor/model"
)

func formatReportFixture(sn string) *model.Report {
	return &model.Report{SN: sn, Pos: "12345678", City: "0371", Type: "B503", NDate: "2021-08-07", NTime: "18:30:30",
		Line: 101, STime: "05:01:01", CTime: "18:30:20", Tenant: 9, AcceptedAt: time.UnixMicro(1_700_000_000_123_456).UTC()}
}

func TestFormatPayloadReport(t *testing.T) {
	in := formatReportFixture("1C2EB08D")
	got := FormatPayload(TypeStatusReport, Ingest{Queues: 1, Groups: 4}.NewReportTask(in).Payload())
	var out struct {
		model.Report
		AcceptedAt time.Time `json:"acceptedAt"`
	}
	if err := json.Unmarshal([]byte(got), &out); err != nil {
		t.Fatalf("report payload shown as %q, not JSON: %v", got, err)
	}
	out.Report.AcceptedAt = out.AcceptedAt
	if out.Report != *in {
		t.Fatalf("shown report %+v, want %+v", out.Report, *in)
	}
}

func TestFormatPayloadBatch(t *testing.T) {
	const n = FormatMaxBatchItems + 10
	tasks := make([]*asynq.Task, 0, n)
	for i := range n {
		tasks = append(tasks, Ingest{Queues: 1, Groups: 4}.NewReportTask(formatReportFixture(fmt.Sprintf("SN%03d", i))))
	}
	got := FormatPayload(TypeStatusBatch, NewStatusBatchTask(tasks).Payload())
	var view struct {
		Count, Listed int
		Items         []struct{ SN, NDate, NTime, Error string }
		Error         string
	}
	if err := json.Unmarshal([]byte(got), &view); err != nil {
		t.Fatalf("batch payload shown as %q, not JSON: %v", got, err)
	}
	if view.Count != n || view.Listed != FormatMaxBatchItems || len(view.Items) != FormatMaxBatchItems || view.Error != "" {
		t.Fatalf("batch shown as count %d, listed %d, %d items, error %q; want %d, %d, %d, none",
			view.Count, view.Listed, len(view.Items), view.Error, n, FormatMaxBatchItems, FormatMaxBatchItems)
	}
	if it := view.Items[7]; it.SN != "SN007" || it.NDate != "2021-08-07" || it.NTime != "18:30:30" {
		t.Fatalf("item 7 = %+v", it)
	}
	if len(got) > 8*1024 {
		t.Fatalf("batch of %d shown in %d bytes; the listing is not bounded", n, len(got))
	}
}

func TestFormatPayloadText(t *testing.T) {
	body := `{"alerts":[{"sn":"1C2EB08D","kind":"device_offline"}]}`
	if got := FormatPayload(TypeAlertNotify, NewAlertNotifyTask([]byte(body)).Payload()); got != body {
		t.Fatalf("notify body shown as %q", got)
	}
	indented := "{\n  \"alerts\": []\n}"
	if got := FormatPayload(TypeAlertNotify, []byte(indented)); got != indented {
		t.Fatalf("indented notify body shown as %q", got)
	}
	if got := FormatPayload(TypeLogPull, []byte("city=0371")); got != "city=0371" {
		t.Fatalf("log pull selector shown as %q", got)
	}
	if got := FormatPayload(TypeSweep, nil); got != "(no payload)" {
		t.Fatalf("empty sweep payload shown as %q", got)
	}
	long := `{"alerts":"` + strings.Repeat("é", FormatMaxTextBytes) + `"}`
	got := FormatPayload(TypeAlertNotify, []byte(long))
	if len(got) > FormatMaxTextBytes+64 || !strings.Contains(got, fmt.Sprintf("of %d bytes shown", len(long))) || !strings.HasPrefix(got, `{"alerts":"é`) {
		t.Fatalf("long notify body shown in %d bytes, ending %q", len(got), got[max(0, len(got)-60):])
	}
}

// TestFormatPayloadCorrupt: payloads that do not decode never panic and say so.
func TestFormatPayloadCorrupt(t *testing.T) {
	good := Ingest{Queues: 1, Groups: 4}.NewReportTask(formatReportFixture("1C2EB08D")).Payload()
	batch := NewStatusBatchTask([]*asynq.Task{asynq.NewTask(TypeStatusReport, good), asynq.NewTask(TypeStatusReport, good)}).Payload()
	for _, c := range []struct {
		name, typ string
		payload   []byte
	}{
		{"empty report", TypeStatusReport, nil},
		{"truncated report", TypeStatusReport, good[:len(good)-4]},
		{"report version", TypeStatusReport, append([]byte{9}, good[1:]...)},
		{"report with trailing bytes", TypeStatusReport, append(append([]byte{}, good...), 1, 2)},
		{"truncated batch", TypeStatusBatch, batch[:len(batch)-3]},
		{"batch of garbage items", TypeStatusBatch, []byte{3, 0xff, 0xfe, 0xfd}},
		{"binary notify", TypeAlertNotify, []byte{0xff, 0x00, 0x01}},
		{"notify with control bytes", TypeAlertNotify, []byte("{\x00}")},
	} {
		var got string
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: FormatPayload panicked: %v", c.name, p)
				}
			}()
			got = FormatPayload(c.typ, c.payload)
		}()
		if !strings.Contains(got, "undecodable") {
			t.Errorf("%s: shown as %q, which does not say it is undecodable", c.name, got)
		}
	}
	// A truncated batch still lists the items before the damage.
	got := FormatPayload(TypeStatusBatch, batch[:len(batch)-3])
	if !strings.Contains(got, `"sn": "1C2EB08D"`) {
		t.Errorf("truncated batch shown as %q, without its intact first item", got)
	}
}

// FuzzFormatPayload: no payload makes the formatter panic, its text is valid UTF-8, and a
// report payload is shown as JSON that round-trips to the report exactly when the
// payload decodes whole; otherwise it is shown as undecodable.
func FuzzFormatPayload(f *testing.F) {
	f.Add(AppendReport(nil, formatReportFixture("x")))
	f.Add([]byte{3, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, typ := range []string{TypeStatusReport, TypeStatusBatch, TypeAlertNotify, TypeLogPull} {
			if out := FormatPayload(typ, b); !utf8.ValidString(out) || out == "" {
				t.Fatalf("%s: %q is empty or not UTF-8", typ, out)
			}
		}
		out := FormatPayload(TypeStatusReport, b)
		r, rest, err := DecodeReport(b)
		if err != nil || len(rest) > 0 {
			if !strings.Contains(out, "undecodable") {
				t.Fatalf("payload that does not decode whole shown as %q", out)
			}
			return
		}
		var back model.Report
		if err := json.Unmarshal([]byte(out), &back); err != nil {
			t.Fatalf("report shown as %q, not JSON: %v", out, err)
		}
		for _, s := range []string{r.SN, r.Pos, r.City, r.Type, r.NDate, r.NTime, r.STime, r.CTime} {
			if !utf8.ValidString(s) {
				return // JSON shows invalid bytes as U+FFFD: the text cannot read back exactly
			}
		}
		r.AcceptedAt = time.Time{} // model.Report's JSON leaves it out; the formatter adds it apart
		if back != r {
			t.Fatalf("report shown as %q reads back as %+v, want %+v", out, back, r)
		}
	})
}
