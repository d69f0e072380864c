package task

import (
	"errors"
	"monitor/model"
	"slices"
	"strconv"
	"testing"
	"time"
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

func TestGroupIsStableAndSpread(t *testing.T) {
	if Group("1C2EB08D", 16) != Group("1C2EB08D", 16) {
		t.Fatal("group is not stable")
	}
	seen := map[string]int{}
	for i := range 1600 {
		seen[Group(string(rune('A'+i%26))+string(rune('a'+i/26%26))+"x", 16)]++
	}
	if len(seen) != 16 {
		t.Fatalf("1600 sns hit %d of 16 groups", len(seen))
	}
}

func TestGroupNamesAreTheGroupsOfGroup(t *testing.T) {
	names := GroupNames(16)
	for i := range 1000 {
		sn := "SN" + strconv.Itoa(i)
		if !slices.Contains(names, Group(sn, 16)) {
			t.Fatalf("Group(%q, 16) = %q, not among GroupNames(16) %v", sn, Group(sn, 16), names)
		}
	}
}
