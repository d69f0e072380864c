package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"monitor/fleet"
)

// TestCommandReachesDeviceThroughRecorder: with the composition root's buffered
// Recorder, a device with an open command still gets cmd 1 and the command's id in the
// reply to its report, and the delivery is counted; a device without one is answered
// without a round trip and recorded by the flush.
func TestCommandReachesDeviceThroughRecorder(t *testing.T) {
	ctx := context.Background()
	h, opt := prepareHarness(t)
	rec, err := fleet.NewRecorder(opt.Fleet, fleet.RecorderOptions{FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	opt.Accepter = rec
	if h.srv, err = New(opt); err != nil {
		t.Fatal(err)
	}
	h.seedABC()
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cmd := h.createCommand("A", http.StatusCreated)
	if err := rec.Flush(ctx); err != nil { // the index learns of the new command
		t.Fatal(err)
	}
	for range 2 {
		if r := h.reply("A"); r.Cmd != 1 || r.CmdID != cmd.ID || r.Code != 0 {
			t.Fatalf("reply to A = %+v, want cmd 1 cmdId %d", r, cmd.ID)
		}
	}
	if r := h.reply("B"); r.Cmd != 0 || r.CmdID != 0 {
		t.Fatalf("reply to B = %+v, want no command", r)
	}
	seen, err := opt.Fleet.LastSeen(ctx, []string{"A", "B"})
	if err != nil || seen[0].IsZero() || !seen[1].IsZero() {
		t.Fatalf("before the flush: last seen %v (%v), want A's (direct) and not yet B's (buffered)", seen, err)
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if seen, err = opt.Fleet.LastSeen(ctx, []string{"B"}); err != nil || seen[0].IsZero() {
		t.Fatalf("B after the flush: last seen %v (%v)", seen, err)
	}
	// A new device's report still in the buffer makes it known: a command can be opened.
	h.reply("NEWDEV")
	if created := h.createCommand("NEWDEV", http.StatusCreated); created.SN != "NEWDEV" {
		t.Fatalf("command for a device that just reported: %+v", created)
	}
	ds, err := opt.Fleet.TakeDeliveries(ctx)
	if err != nil || len(ds) != 1 || ds[cmd.ID].Count != 2 {
		t.Fatalf("deliveries %+v (%v), want command %d delivered twice", ds, err, cmd.ID)
	}
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
