package api

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"monitor/model"
)

func TestLogUpload(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.LogMaxBytes = 1 << 20 })
	h.seedABC()
	cmdA := h.createCommand("A", http.StatusCreated)
	cmdB := h.createCommand("B", http.StatusCreated)
	upload := func(query string, body io.Reader) *httptest.ResponseRecorder {
		return h.send(http.MethodPost, "/open/logUpload?"+query, body)
	}
	a := "cmdId=" + strconv.FormatUint(cmdA.ID, 10)
	over := bytes.Repeat([]byte("x"), int(h.srv.opt.LogMaxBytes)+1)
	for _, tc := range []struct {
		name, query string
		body        io.Reader
		want        int
	}{
		{"traversal in sn", "sn=../../etc/passwd&" + a, strings.NewReader("x"), http.StatusBadRequest},
		{"encoded traversal in sn", "sn=..%2F..%2Ftmp%2Fx&" + a, strings.NewReader("x"), http.StatusBadRequest},
		{"slash in sn", "sn=A%2F..&" + a, strings.NewReader("x"), http.StatusBadRequest},
		{"traversal in cmdId", "sn=A&cmdId=..%2F1", strings.NewReader("x"), http.StatusBadRequest},
		{"no cmdId", "sn=A", strings.NewReader("x"), http.StatusBadRequest},
		{"no sn", a, strings.NewReader("x"), http.StatusBadRequest},
		{"wrong device's cmdId", "sn=A&cmdId=" + strconv.FormatUint(cmdB.ID, 10), strings.NewReader("x"), http.StatusConflict},
		{"unknown cmdId", "sn=A&cmdId=999999", strings.NewReader("x"), http.StatusConflict},
		{"oversize with length", "sn=A&" + a, bytes.NewReader(over), http.StatusRequestEntityTooLarge},
		{"oversize streamed", "sn=A&" + a, io.MultiReader(bytes.NewReader(over)), http.StatusRequestEntityTooLarge},
	} {
		rec := upload(tc.query, tc.body)
		if rec.Code != tc.want || decode[replyJSON](t, rec).Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.want)
		}
	}
	if files, err := os.ReadDir(h.srv.opt.LogDir); err != nil || len(files) != 0 {
		t.Fatalf("refused uploads left files: %v %v", files, err)
	}

	content := make([]byte, 300<<10)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	rec := upload("sn=A&"+a, io.MultiReader(bytes.NewReader(content)))
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"code":0,"msg":"ok"}` {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body)
	}
	files, err := os.ReadDir(h.srv.opt.LogDir)
	if err != nil || len(files) != 1 {
		t.Fatalf("log dir holds %v (%v), want one file", files, err)
	}
	stored, err := os.ReadFile(filepath.Join(h.srv.opt.LogDir, files[0].Name()))
	if err != nil || !bytes.Equal(stored, content) {
		t.Fatalf("stored file differs from the upload (%v)", err)
	}
	var lg model.Log
	if err := h.db.Where("command_id = ?", cmdA.ID).Take(&lg).Error; err != nil {
		t.Fatal(err)
	}
	if lg.SN != "A" || lg.Size != int64(len(content)) || lg.SHA256 != hex.EncodeToString(sum[:]) || lg.Path != files[0].Name() {
		t.Fatalf("log row %+v", lg)
	}
	var done model.Command
	if err := h.db.Take(&done, cmdA.ID).Error; err != nil || done.State != model.CommandDone {
		t.Fatalf("command after upload: %+v %v", done, err)
	}
	if r := h.reply("A"); r.Cmd != 0 {
		t.Fatalf("reply after upload still carries a command: %+v", r)
	}
	if rec := upload("sn=A&"+a, strings.NewReader("again")); rec.Code != http.StatusConflict {
		t.Fatalf("second upload for a done command: %d", rec.Code)
	}

	// Operators list and download it.
	rec = h.send(http.MethodGet, "/api/v1/logs?sn=A", nil, bearer...)
	type logJSON struct {
		ID        uint64 `json:"id"`
		CommandID uint64 `json:"commandId"`
		Size      int64  `json:"size"`
		SHA256    string `json:"sha256"`
	}
	p := decode[pageJSON[logJSON]](t, rec)
	if len(p.Items) != 1 || p.Items[0].CommandID != cmdA.ID || p.Items[0].SHA256 != lg.SHA256 || p.Items[0].Size != lg.Size {
		t.Fatalf("logs: %s", rec.Body)
	}
	rec = h.send(http.MethodGet, "/api/v1/logs/"+strconv.FormatUint(p.Items[0].ID, 10), nil, bearer...)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), content) ||
		!strings.HasPrefix(rec.Header().Get("Content-Disposition"), "attachment;") {
		t.Fatalf("download: %d %v (%d bytes)", rec.Code, rec.Header(), rec.Body.Len())
	}
	for path, want := range map[string]int{"/api/v1/logs/999999": 404, "/api/v1/logs/..%2F..": 400, "/api/v1/logs/abc": 400} {
		if rec := h.send(http.MethodGet, path, nil, bearer...); rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
	if rec := h.send(http.MethodGet, "/api/v1/logs/1", nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("download without token: %d", rec.Code)
	}
}

// TestLogUploadNeedsTheDevicesTenantKey checks device auth on /open/logUpload: the key
// must be that of the tenant the device reported under.
func TestLogUploadNeedsTheDevicesTenantKey(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.DeviceKeys = model.TenantKeys{0: "key-zero", 7: "key-seven"} })
	h.seedDevices(device("T7", 7, "0371", "B503", time.Now()))
	cmd := h.createCommand("T7", http.StatusCreated)
	target := "/open/logUpload?sn=T7&cmdId=" + strconv.FormatUint(cmd.ID, 10)
	for _, tc := range []struct {
		name, key string
		want      int
	}{
		{"no key", "", http.StatusUnauthorized},
		{"another tenant's key", "key-zero", http.StatusUnauthorized},
		{"the device's tenant key", "key-seven", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.key != "" {
				hdr = []string{headerDeviceKey, tc.key}
			}
			rec := h.do(http.MethodPost, target, "log line\n", hdr...)
			if rec.Code != tc.want {
				t.Fatalf("status = %d %s, want %d", rec.Code, rec.Body, tc.want)
			}
			if strings.Contains(rec.Body.String(), "key-") {
				t.Fatalf("the answer shows a key: %s", rec.Body)
			}
		})
	}
	rec := h.do(http.MethodPost, "/open/logUpload?sn=NEVER&cmdId=1", "x", headerDeviceKey, "key-zero")
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "not reported") {
		t.Fatalf("a device that never reported: %d %s", rec.Code, rec.Body)
	}
	var logs int64
	if err := h.db.Model(&model.Log{}).Count(&logs).Error; err != nil {
		t.Fatal(err)
	}
	if logs != 1 {
		t.Fatalf("%d logs stored, want only the authorised one", logs)
	}
}

// TestEmptyLogUploadIsRefused is issue 18e: a 0-byte body completed the command with an
// empty log. It is a 400 naming the body, with or without a Content-Length, and the
// command stays open for the real upload.
func TestEmptyLogUploadIsRefused(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.LogMaxBytes = 1 << 20 })
	h.seedABC()
	cmd := h.createCommand("A", http.StatusCreated)
	target := "/open/logUpload?sn=A&cmdId=" + strconv.FormatUint(cmd.ID, 10)
	for name, body := range map[string]io.Reader{
		"no body":          nil,
		"content-length 0": strings.NewReader(""),
		"streamed":         io.MultiReader(strings.NewReader("")),
	} {
		rec := h.send(http.MethodPost, target, body)
		reply := decode[replyJSON](t, rec)
		if rec.Code != http.StatusBadRequest || !strings.HasPrefix(reply.Msg, "body:") {
			t.Errorf("%s: %d %s, want 400 naming the body", name, rec.Code, rec.Body)
		}
	}
	var c model.Command
	if err := h.db.Take(&c, cmd.ID).Error; err != nil {
		t.Fatal(err)
	}
	if c.State != model.CommandPending || c.OpenKey == nil || c.DoneAt != nil {
		t.Fatalf("after empty uploads the command is %s (open %v), want still pending", c.State, c.OpenKey != nil)
	}
	var logs int64
	if err := h.db.Model(&model.Log{}).Count(&logs).Error; err != nil || logs != 0 {
		t.Fatalf("empty uploads stored %d logs (%v)", logs, err)
	}
	if files, err := os.ReadDir(h.srv.opt.LogDir); err != nil && !os.IsNotExist(err) || len(files) != 0 {
		t.Fatalf("empty uploads left files: %v %v", files, err)
	}
	if rec := h.send(http.MethodPost, target, strings.NewReader("the log")); rec.Code != http.StatusOK {
		t.Fatalf("the real upload after them: %d %s", rec.Code, rec.Body)
	}
}
