package api

import (
	"monitor/model"
	"net/http"
	"testing"
	"time"
)

// seedABC stores devices A, B and C, seen now.
func (h *harness) seedABC() {
	h.t.Helper()
	now := time.Now()
	h.seedDevices(device("A", 0, "0371", "B503", now), device("B", 0, "0371", "B503", now), device("C", 0, "0371", "B503", now))
}

// cmdJSON is a command as an operator client reads it.
type cmdJSON struct {
	ID    uint64 `json:"id"`
	SN    string `json:"sn"`
	Type  string `json:"type"`
	State string `json:"state"`
}

// replyJSON is the reply to a terminal's report or log upload.
type replyJSON struct {
	Code  int    `json:"code"`
	Msg   string `json:"msg"`
	Cmd   int    `json:"cmd"`
	CmdID uint64 `json:"cmdId"`
}

// createCommand asks for an upload_logs command for sn and wants status want.
func (h *harness) createCommand(sn string, want int) cmdJSON {
	h.t.Helper()
	rec := h.do(http.MethodPost, "/api/v1/devices/"+sn+"/commands", `{"type":"upload_logs"}`, bearer...)
	if rec.Code != want {
		h.t.Fatalf("create command for %s: %d %s, want %d", sn, rec.Code, rec.Body, want)
	}
	return decode[cmdJSON](h.t, rec)
}

// reply posts a minimal report of sn, wants 200 and returns the reply.
func (h *harness) reply(sn string) replyJSON {
	h.t.Helper()
	rec := h.postReport(`{"sn":"` + sn + `","ndate":"2026-03-01","ntime":"08:00:00"}`)
	if rec.Code != http.StatusOK {
		h.t.Fatalf("report %s: %d %s", sn, rec.Code, rec.Body)
	}
	return decode[replyJSON](h.t, rec)
}

func TestCommandRoutesAndReply(t *testing.T) {
	h := newHarness(t)
	h.seedABC()
	cmd := h.createCommand("A", http.StatusCreated)
	if cmd.ID == 0 || cmd.SN != "A" || cmd.Type != "upload_logs" || cmd.State != "pending" {
		t.Fatalf("created %+v", cmd)
	}
	for _, tc := range []struct {
		name, path, body string
		operator         bool
		want             int
	}{
		{"no token", "/api/v1/devices/A/commands", `{"type":"upload_logs"}`, false, http.StatusUnauthorized},
		{"unknown device", "/api/v1/devices/NOPE/commands", `{"type":"upload_logs"}`, true, http.StatusNotFound},
		{"bad type", "/api/v1/devices/A/commands", `{"type":"reboot"}`, true, http.StatusBadRequest},
		{"bad json", "/api/v1/devices/A/commands", `{`, true, http.StatusBadRequest},
		{"bad sn", "/api/v1/devices/A.B/commands", `{"type":"upload_logs"}`, true, http.StatusBadRequest},
	} {
		var hdr []string
		if tc.operator {
			hdr = bearer
		}
		rec := h.do(http.MethodPost, tc.path, tc.body, hdr...)
		if rec.Code != tc.want || decode[replyJSON](t, rec).Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.want)
		}
	}

	if r := h.reply("A"); r.Cmd != 1 || r.CmdID != cmd.ID || r.Code != 0 {
		t.Fatalf("reply to A = %+v, want cmd 1 cmdId %d", r, cmd.ID)
	}
	if r := h.reply("B"); r.Cmd != 0 || r.CmdID != 0 {
		t.Fatalf("reply to B = %+v, want no command", r)
	}

	// Listing: newest first, paged by an opaque cursor.
	b, c := h.createCommand("B", http.StatusCreated), h.createCommand("C", http.StatusCreated)
	rec := h.send(http.MethodGet, "/api/v1/commands?limit=2", nil, bearer...)
	p1 := decode[pageJSON[cmdJSON]](t, rec)
	if rec.Code != http.StatusOK || len(p1.Items) != 2 || p1.Items[0].ID != c.ID || p1.Items[1].ID != b.ID || p1.NextCursor == "" {
		t.Fatalf("page 1: %d %s", rec.Code, rec.Body)
	}
	rec = h.send(http.MethodGet, "/api/v1/commands?limit=2&cursor="+p1.NextCursor, nil, bearer...)
	p2 := decode[pageJSON[cmdJSON]](t, rec)
	if len(p2.Items) != 1 || p2.Items[0].ID != cmd.ID || p2.NextCursor != "" {
		t.Fatalf("page 2: %s", rec.Body)
	}
	rec = h.send(http.MethodGet, "/api/v1/commands?sn=B&state=pending", nil, bearer...)
	if p := decode[pageJSON[cmdJSON]](t, rec); len(p.Items) != 1 || p.Items[0].ID != b.ID {
		t.Fatalf("filtered: %s", rec.Body)
	}
	for _, q := range []string{"state=open", "cursor=xyz", "limit=0", "limit=5000", "sn=../x"} {
		if rec := h.send(http.MethodGet, "/api/v1/commands?"+q, nil, bearer...); rec.Code != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, rec.Code)
		}
	}
	// A cursor of another listing is refused.
	if rec := h.send(http.MethodGet, "/api/v1/alerts?cursor="+p1.NextCursor, nil, bearer...); rec.Code != http.StatusBadRequest {
		t.Errorf("commands cursor on alerts: %d, want 400", rec.Code)
	}
}

// TestCreateCommandAgainIs201WithTheOpenCommand: creating a command is idempotent. A
// second POST while the first command is open answers as the first did, 201 with the
// command (the contract's id and state), and opens no second one.
func TestCreateCommandAgainIs201WithTheOpenCommand(t *testing.T) {
	h := newHarness(t)
	h.seedABC()
	first := h.createCommand("A", http.StatusCreated)
	for range 2 {
		rec := h.do(http.MethodPost, "/api/v1/devices/A/commands", `{"type":"upload_logs"}`, bearer...)
		if rec.Code != http.StatusCreated {
			t.Fatalf("POST while a command is open: %d %s, want 201", rec.Code, rec.Body)
		}
		if again := decode[cmdJSON](t, rec); again != first {
			t.Fatalf("POST while a command is open returned %+v, want the open command %+v", again, first)
		}
	}
	var n int64
	if err := h.db.Model(&model.Command{}).Where("sn = ?", "A").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d commands stored for A, want 1", n)
	}
}
