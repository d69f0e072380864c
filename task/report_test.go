package task

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"monitor/model"
)

func TestReportRoundTrip(t *testing.T) {
	in := model.Report{SN: "1C2EB08D", Pos: "12345678", City: "0371", Type: "B503", Unum1: 1, Unum2: 1<<32 - 1,
		NDate: "2021-08-07", NTime: "18:30:30", Amount: 7, Count: 3, Line: 101, STime: "05:01:01",
		CTime: "18:30:20", Tenant: 9, AcceptedAt: time.UnixMicro(1_700_000_000_123_456).UTC()}
	out, rest, err := DecodeReport(AppendReport(nil, &in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 0 {
		t.Fatalf("rest = %d bytes, want 0", len(rest))
	}
	if out != in {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestDecodeReportRejectsGarbage(t *testing.T) {
	good := AppendReport(nil, &model.Report{SN: "a", NDate: "2021-01-01", NTime: "00:00:00"})
	for name, b := range map[string][]byte{
		"empty":       nil,
		"version":     append([]byte{9}, good[1:]...),
		"truncated":   good[:len(good)-3],
		"long string": {payloadVersion, 200, 'a'},
	} {
		if _, _, err := DecodeReport(b); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: err = %v, want ErrBadPayload", name, err)
		}
	}
}

// TestIngestSpread: every sn keeps its queue and group, and sns cover every queue and,
// inside each queue, every group, even when the two counts share a factor (6 and 16).
func TestIngestSpread(t *testing.T) {
	in := Ingest{Queues: 6, Groups: 16}
	if in.Queue("1C2EB08D") != in.Queue("1C2EB08D") || in.Group("1C2EB08D") != in.Group("1C2EB08D") {
		t.Fatal("queue or group is not stable")
	}
	seen := map[string]map[string]int{}
	for i := range 20000 {
		sn := fmt.Sprintf("SN%06d", i)
		q := in.Queue(sn)
		if seen[q] == nil {
			seen[q] = map[string]int{}
		}
		seen[q][in.Group(sn)]++
	}
	if len(seen) != 6 {
		t.Fatalf("20000 sns hit %d of 6 queues", len(seen))
	}
	for q, groups := range seen {
		if len(groups) != 16 {
			t.Errorf("queue %s: 20000 sns hit %d of its 16 groups", q, len(groups))
		}
	}
}

// TestIngestQueueNames: one queue keeps the name "ingest"; several are ingest-0… and
// never hold a brace, which would change asynq's hash tag.
func TestIngestQueueNames(t *testing.T) {
	if got := (Ingest{Queues: 1}).QueueNames(); len(got) != 1 || got[0] != QueueIngest {
		t.Fatalf("one queue: %v, want [ingest]", got)
	}
	got := Ingest{Queues: 3}.QueueNames()
	if want := []string{"ingest-0", "ingest-1", "ingest-2"}; !slices.Equal(got, want) {
		t.Fatalf("three queues: %v, want %v", got, want)
	}
	for _, q := range (Ingest{Queues: MaxIngestQueues}).QueueNames() {
		if strings.ContainsAny(q, "{}") {
			t.Fatalf("queue name %q holds a brace", q)
		}
	}
}

// TestIsIngestQueue: the names of every count are ingest queues, nothing else is.
func TestIsIngestQueue(t *testing.T) {
	for _, q := range append(Ingest{Queues: MaxIngestQueues}.QueueNames(), QueueIngest) {
		if !IsIngestQueue(q) {
			t.Errorf("%s is not taken for an ingest queue", q)
		}
	}
	for _, q := range []string{QueuePeriodic, QueueNotify, "ingest-", "ingest-01", "ingest-256", "ingest-x", "ingest-0-1", "xingest-1"} {
		if IsIngestQueue(q) {
			t.Errorf("%s is taken for an ingest queue", q)
		}
	}
}

func TestGroupNamesAreTheGroupsOfGroup(t *testing.T) {
	in := Ingest{Queues: 6, Groups: 16}
	names := in.GroupNames()
	if len(names) != 16 {
		t.Fatalf("GroupNames() = %v, want 16 names", names)
	}
	for i := range 1000 {
		sn := fmt.Sprintf("SN%d", i)
		if !slices.Contains(names, in.Group(sn)) {
			t.Fatalf("Group(%q) = %q, not among GroupNames() %v", sn, in.Group(sn), names)
		}
	}
}
