package simulate

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Result is the summary of one run; its JSON form is the machine-readable line of --json.
type Result struct {
	Mode            string         `json:"mode"`
	URL             string         `json:"url"`
	Devices         int            `json:"devices"`
	Concurrency     int            `json:"concurrency"`
	Rate            float64        `json:"rate,omitempty"`
	DurationSeconds float64        `json:"duration_s,omitempty"`
	SNPrefix        string         `json:"sn_prefix"`
	Sent            int            `json:"sent"`
	Accepted        int            `json:"accepted"`
	Statuses        map[string]int `json:"errors_by_status"`
	TransportErrors int            `json:"transport_errors"`
	FirstError      string         `json:"first_error,omitempty"`
	// SendSeconds runs from the first request to the last answer.
	SendSeconds    float64 `json:"send_s"`
	AcceptedPerSec float64 `json:"accepted_per_s"`
	P50ms          float64 `json:"p50_ms"`
	P99ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	// GeneratorCPUSeconds is the CPU time the simulator itself used while sending.
	GeneratorCPUSeconds float64 `json:"generator_cpu_s"`
	Land                *Land   `json:"land,omitempty"`
}

// Print writes the summary for people.
func (r *Result) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mode %s: %d devices (prefix %s) over %d connections to %s", r.Mode, r.Devices, r.SNPrefix, r.Concurrency, r.URL)
	if r.Mode == "steady" {
		fmt.Fprintf(&b, ", %.0f reports/s for %gs", r.Rate, r.DurationSeconds)
	}
	fmt.Fprintf(&b, "\nsent       %d in %.2fs (the simulator used %.2fs of CPU)\naccepted   %d (%.0f/s)\nlatency    p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
		r.Sent, r.SendSeconds, r.GeneratorCPUSeconds, r.Accepted, r.AcceptedPerSec, r.P50ms, r.P99ms, r.MaxMs)
	if len(r.Statuses) == 0 && r.TransportErrors == 0 {
		b.WriteString("errors     none\n")
	} else {
		b.WriteString("errors    ")
		for _, s := range slices.Sorted(maps.Keys(r.Statuses)) {
			label := "HTTP " + s
			if s == "-1" {
				label = "200 without code 0"
			}
			fmt.Fprintf(&b, " %s: %d", label, r.Statuses[s])
		}
		if r.TransportErrors > 0 {
			fmt.Fprintf(&b, " transport: %d", r.TransportErrors)
		}
		fmt.Fprintf(&b, "\n           first: %s\n", r.FirstError)
	}
	if l := r.Land; l != nil {
		if l.Landed {
			fmt.Fprintf(&b, "landed     all %d accepted reports in tb_status %.2fs after the first request (%.0f/s end to end)\n",
				r.Accepted, l.Seconds, l.EndToEndPerSec)
		} else {
			fmt.Fprintf(&b, "landed     NOT ALL: gave up %.2fs after the first request\n", l.Seconds)
		}
		fmt.Fprintf(&b, "tb_status  %d rows: lost %d, duplicated %d, stored without acknowledgement %d, foreign %d\n",
			l.Rows, l.Lost, l.Duplicated, l.Unacknowledged, l.Foreign)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
