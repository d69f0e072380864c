package simulate

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"monitor/model"
)

// TestAckFileListsExactlyTheAcknowledged checks --ack-file against what the fake server
// answered 200: every acknowledged report once, no refused one.
func TestAckFileListsExactlyTheAcknowledged(t *testing.T) {
	const prefix = "ACK-"
	fake := &fakeServer{answer: func(r model.Report) int {
		if deviceOf(t, prefix, r.SN)%3 == 0 || r.NTime == "00:00:01" && deviceOf(t, prefix, r.SN)%2 == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "acked")
	res, err := Simulate(t.Context(), Options{URL: srv.URL, Devices: 10, Concurrency: 3, Mode: "steady",
		Rate: 200, Duration: 100 * time.Millisecond, SNPrefix: prefix, Timeout: 5 * time.Second, AckFile: path})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range fake.reports {
		d := deviceOf(t, prefix, r.SN)
		if d%3 != 0 && !(r.NTime == "00:00:01" && d%2 == 0) {
			want = append(want, r.SN+" "+r.NDate+" "+r.NTime)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
	for i := range got {
		got[i] = strings.ReplaceAll(got[i], "_", " ")
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) == 0 || len(want) != res.Accepted || !slices.Equal(got, want) {
		t.Errorf("ack file (%d lines):\n%v\nwant the %d acknowledged (res.Accepted %d):\n%v", len(got), got, len(want), res.Accepted, want)
	}
}
