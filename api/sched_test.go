package api_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"monitor/api"
	"monitor/config"
	"monitor/internal/testenv"
	"monitor/model"
)

const operatorToken = "sched-test-operator-token"

type schedEnv struct {
	srv *api.Server
	db  *gorm.DB
	cfg *config.Config
}

func newSchedEnv(t testing.TB, opts ...func(*config.Config)) *schedEnv {
	t.Helper()
	rdb := testenv.NewRedis(t)
	db := testenv.NewDB(t).DB
	cfg := config.Default()
	cfg.OperatorToken = operatorToken
	cfg.LogDir = t.TempDir()
	cfg.LogMaxBytes = 1 << 20
	for _, o := range opts {
		o(cfg)
	}
	queue := asynq.NewClient(rdb.Opt())
	srv := api.New(cfg, testenv.Logger(t), queue, rdb.Opt(), rdb.Client, db)
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := queue.Close(); err != nil {
			t.Error(err)
		}
	})
	now := time.Now().UTC()
	for _, sn := range []string{"A", "B", "C"} {
		if err := db.Create(&model.Device{SN: sn, City: "0371", FirstSeen: now, LastSeen: now}).Error; err != nil {
			t.Fatal(err)
		}
	}
	return &schedEnv{srv: srv, db: db, cfg: cfg}
}

// do sends a request to the server; an operator request carries the token.
func (e *schedEnv) do(t *testing.T, method, target string, body io.Reader, operator bool) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	if operator {
		req.Header.Set("Authorization", "Bearer "+operatorToken)
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body, err)
	}
	return v
}

type cmdJSON struct {
	ID    uint64 `json:"id"`
	SN    string `json:"sn"`
	Type  string `json:"type"`
	State string `json:"state"`
}

type pageJSON[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor"`
}

type replyJSON struct {
	Code  int    `json:"code"`
	Msg   string `json:"msg"`
	Cmd   int    `json:"cmd"`
	CmdID uint64 `json:"cmdId"`
}

func (e *schedEnv) createCommand(t *testing.T, sn string, want int) cmdJSON {
	t.Helper()
	rec := e.do(t, http.MethodPost, "/api/v1/devices/"+sn+"/commands", strings.NewReader(`{"type":"upload_logs"}`), true)
	if rec.Code != want {
		t.Fatalf("create command for %s: %d %s, want %d", sn, rec.Code, rec.Body, want)
	}
	return decode[cmdJSON](t, rec)
}

func (e *schedEnv) report(t *testing.T, sn string) replyJSON {
	t.Helper()
	body := `{"sn":"` + sn + `","ndate":"2026-03-01","ntime":"08:00:00"}`
	rec := e.do(t, http.MethodPost, "/open/statusUpload", strings.NewReader(body), false)
	if rec.Code != http.StatusOK {
		t.Fatalf("report %s: %d %s", sn, rec.Code, rec.Body)
	}
	return decode[replyJSON](t, rec)
}

func TestCommandRoutesAndReply(t *testing.T) {
	e := newSchedEnv(t)
	cmd := e.createCommand(t, "A", http.StatusCreated)
	if cmd.ID == 0 || cmd.SN != "A" || cmd.Type != "upload_logs" || cmd.State != "pending" {
		t.Fatalf("created %+v", cmd)
	}
	if again := e.createCommand(t, "A", http.StatusOK); again.ID != cmd.ID {
		t.Fatalf("second POST returned %d, want the open command %d", again.ID, cmd.ID)
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
		rec := e.do(t, http.MethodPost, tc.path, strings.NewReader(tc.body), tc.operator)
		if rec.Code != tc.want || decode[replyJSON](t, rec).Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.want)
		}
	}

	if r := e.report(t, "A"); r.Cmd != 1 || r.CmdID != cmd.ID || r.Code != 0 {
		t.Fatalf("reply to A = %+v, want cmd 1 cmdId %d", r, cmd.ID)
	}
	if r := e.report(t, "B"); r.Cmd != 0 || r.CmdID != 0 {
		t.Fatalf("reply to B = %+v, want no command", r)
	}

	// Listing: newest first, paged by an opaque cursor.
	b, c := e.createCommand(t, "B", http.StatusCreated), e.createCommand(t, "C", http.StatusCreated)
	rec := e.do(t, http.MethodGet, "/api/v1/commands?limit=2", nil, true)
	p1 := decode[pageJSON[cmdJSON]](t, rec)
	if rec.Code != http.StatusOK || len(p1.Items) != 2 || p1.Items[0].ID != c.ID || p1.Items[1].ID != b.ID || p1.NextCursor == "" {
		t.Fatalf("page 1: %d %s", rec.Code, rec.Body)
	}
	rec = e.do(t, http.MethodGet, "/api/v1/commands?limit=2&cursor="+p1.NextCursor, nil, true)
	p2 := decode[pageJSON[cmdJSON]](t, rec)
	if len(p2.Items) != 1 || p2.Items[0].ID != cmd.ID || p2.NextCursor != "" {
		t.Fatalf("page 2: %s", rec.Body)
	}
	rec = e.do(t, http.MethodGet, "/api/v1/commands?sn=B&state=pending", nil, true)
	if p := decode[pageJSON[cmdJSON]](t, rec); len(p.Items) != 1 || p.Items[0].ID != b.ID {
		t.Fatalf("filtered: %s", rec.Body)
	}
	for _, q := range []string{"state=open", "cursor=xyz", "limit=0", "limit=5000", "sn=../x"} {
		if rec := e.do(t, http.MethodGet, "/api/v1/commands?"+q, nil, true); rec.Code != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, rec.Code)
		}
	}
	// A cursor of another listing is refused.
	if rec := e.do(t, http.MethodGet, "/api/v1/alerts?cursor="+p1.NextCursor, nil, true); rec.Code != http.StatusBadRequest {
		t.Errorf("commands cursor on alerts: %d, want 400", rec.Code)
	}
}

func TestLogUpload(t *testing.T) {
	e := newSchedEnv(t)
	cmdA := e.createCommand(t, "A", http.StatusCreated)
	cmdB := e.createCommand(t, "B", http.StatusCreated)
	upload := func(query string, body io.Reader) *httptest.ResponseRecorder {
		return e.do(t, http.MethodPost, "/open/logUpload?"+query, body, false)
	}
	a := "cmdId=" + strconv.FormatUint(cmdA.ID, 10)
	over := bytes.Repeat([]byte("x"), int(e.cfg.LogMaxBytes)+1)
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
	if files, err := os.ReadDir(e.cfg.LogDir); err != nil || len(files) != 0 {
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
	files, err := os.ReadDir(e.cfg.LogDir)
	if err != nil || len(files) != 1 {
		t.Fatalf("log dir holds %v (%v), want one file", files, err)
	}
	stored, err := os.ReadFile(e.cfg.LogDir + "/" + files[0].Name())
	if err != nil || !bytes.Equal(stored, content) {
		t.Fatalf("stored file differs from the upload (%v)", err)
	}
	var lg model.Log
	if err := e.db.Where("command_id = ?", cmdA.ID).Take(&lg).Error; err != nil {
		t.Fatal(err)
	}
	if lg.SN != "A" || lg.Size != int64(len(content)) || lg.SHA256 != hex.EncodeToString(sum[:]) || lg.Path != files[0].Name() {
		t.Fatalf("log row %+v", lg)
	}
	var done model.Command
	if err := e.db.Take(&done, cmdA.ID).Error; err != nil || done.State != model.CommandDone {
		t.Fatalf("command after upload: %+v %v", done, err)
	}
	if r := e.report(t, "A"); r.Cmd != 0 {
		t.Fatalf("reply after upload still carries a command: %+v", r)
	}
	if rec := upload("sn=A&"+a, strings.NewReader("again")); rec.Code != http.StatusConflict {
		t.Fatalf("second upload for a done command: %d", rec.Code)
	}

	// Operators list and download it.
	rec = e.do(t, http.MethodGet, "/api/v1/logs?sn=A", nil, true)
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
	rec = e.do(t, http.MethodGet, "/api/v1/logs/"+strconv.FormatUint(p.Items[0].ID, 10), nil, true)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), content) ||
		!strings.HasPrefix(rec.Header().Get("Content-Disposition"), "attachment;") {
		t.Fatalf("download: %d %v (%d bytes)", rec.Code, rec.Header(), rec.Body.Len())
	}
	for path, want := range map[string]int{"/api/v1/logs/999999": 404, "/api/v1/logs/..%2F..": 400, "/api/v1/logs/abc": 400} {
		if rec := e.do(t, http.MethodGet, path, nil, true); rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
	if rec := e.do(t, http.MethodGet, "/api/v1/logs/1", nil, false); rec.Code != http.StatusUnauthorized {
		t.Errorf("download without token: %d", rec.Code)
	}
}

func TestListAlerts(t *testing.T) {
	e := newSchedEnv(t)
	now := time.Now().UTC()
	key := "device_offline:A"
	for _, a := range []model.Alert{
		{Kind: model.AlertOffline, SN: "A", State: model.AlertFiring, StartsAt: now, FiringKey: &key},
		{Kind: model.AlertOffline, SN: "B", State: model.AlertResolved, StartsAt: now, EndsAt: &now},
		{Kind: model.AlertUnsent, SN: "C", State: model.AlertResolved, StartsAt: now, EndsAt: &now},
	} {
		if err := e.db.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
	}
	type alertJSON struct {
		SN     string     `json:"sn"`
		State  string     `json:"state"`
		EndsAt *time.Time `json:"endsAt"`
	}
	for q, want := range map[string]string{
		"state=firing":                       "A",
		"state=resolved":                     "C,B",
		"state=resolved&kind=device_offline": "B",
		"":                                   "C,B,A",
		"sn=C":                               "C",
		"state=resolved&kind=unsent_records&sn=C": "C",
	} {
		rec := e.do(t, http.MethodGet, "/api/v1/alerts?"+q, nil, true)
		var got []string
		for _, a := range decode[pageJSON[alertJSON]](t, rec).Items {
			got = append(got, a.SN)
			if (a.State == "resolved") != (a.EndsAt != nil) {
				t.Errorf("?%s: %s has state %s and endsAt %v", q, a.SN, a.State, a.EndsAt)
			}
		}
		if strings.Join(got, ",") != want {
			t.Errorf("?%s: %v, want %s", q, got, want)
		}
	}
	for _, q := range []string{"state=open", "kind=x"} {
		if rec := e.do(t, http.MethodGet, "/api/v1/alerts?"+q, nil, true); rec.Code != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, rec.Code)
		}
	}
}

// TestLogUploadNeedsTheDevicesTenantKey checks device auth on /open/logUpload: the key
// must be that of the tenant the device reported under.
func TestLogUploadNeedsTheDevicesTenantKey(t *testing.T) {
	e := newSchedEnv(t, func(c *config.Config) {
		c.DeviceAuth = "tenant-key"
		c.DeviceKeys = "0:key-zero,7:key-seven"
	})
	now := time.Now().UTC()
	if err := e.db.Create(&model.Device{SN: "T7", Tenant: 7, FirstSeen: now, LastSeen: now}).Error; err != nil {
		t.Fatal(err)
	}
	cmd := e.createCommand(t, "T7", http.StatusCreated)
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
			req := httptest.NewRequest(http.MethodPost, target, strings.NewReader("log line\n"))
			if tc.key != "" {
				req.Header.Set("X-Device-Key", tc.key)
			}
			rec := httptest.NewRecorder()
			e.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status = %d %s, want %d", rec.Code, rec.Body, tc.want)
			}
			if strings.Contains(rec.Body.String(), "key-") {
				t.Fatalf("the answer shows a key: %s", rec.Body)
			}
		})
	}
	req := httptest.NewRequest(http.MethodPost, "/open/logUpload?sn=NEVER&cmdId=1", strings.NewReader("x"))
	req.Header.Set("X-Device-Key", "key-zero")
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "not reported") {
		t.Fatalf("a device that never reported: %d %s", rec.Code, rec.Body)
	}
	var logs int64
	if err := e.db.Model(&model.Log{}).Count(&logs).Error; err != nil {
		t.Fatal(err)
	}
	if logs != 1 {
		t.Fatalf("%d logs stored, want only the authorised one", logs)
	}
}
