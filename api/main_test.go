package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"gorm.io/gorm"

	"monitor/config"
	"monitor/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testToken = "test-operator-token-0123456789"

// harness is an env served over real HTTP, as the process serves it.
type harness struct {
	cfg   *config.Config
	redis *testenv.Redis
	db    *gorm.DB
	http  *httptest.Server
}

func newHarness(t *testing.T, opts ...func(*config.Config)) *harness {
	t.Helper()
	e := newEnv(t, func(c *config.Config) {
		c.IngestGroups = 4
		for _, o := range opts {
			o(c)
		}
	})
	h := &harness{cfg: e.cfg, redis: e.redis, db: e.db, http: httptest.NewServer(e.srv.Handler())}
	t.Cleanup(h.http.Close)
	return h
}

// post sends body to path with a Content-Type and returns the status and decoded JSON.
func (h *harness) post(t *testing.T, path, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("response %q is not JSON: %v", raw, err)
		}
	}
	return resp.StatusCode, m
}

// queued returns how many keys the test's Redis db holds: 0 means nothing was enqueued.
func (h *harness) queued(t *testing.T) int64 {
	t.Helper()
	n, err := h.redis.Client.DBSize(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (h *harness) rows(t *testing.T, table string) int64 {
	t.Helper()
	var n int64
	if err := h.db.Table(table).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
