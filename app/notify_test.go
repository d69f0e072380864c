package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"monitor/config"
	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"

	"github.com/hibiken/asynq"
)

// TestWorkerSignsWebhookWithConfiguredSecret: the worker's notify handler, as built
// from the configuration, signs each POST with MONITOR_ALERT_WEBHOOK_SECRET.
func TestWorkerSignsWebhookWithConfiguredSecret(t *testing.T) {
	const secret = "configured-secret"
	got := make(chan bool, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read webhook body: %v", err)
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		got <- r.Header.Get("X-Monitor-Signature") == "sha256="+hex.EncodeToString(mac.Sum(nil))
	}))
	defer hook.Close()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.AlertWebhookURL = hook.URL
	cfg.AlertWebhookSecret = secret
	// The worker refuses a database without the schema: migrate it as `monitor migrate` would.
	if err := migrate(t.Context(), cfg, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	// Started and shut down so that its Redis client is closed too.
	p := startWorker(t, cfg)
	if err := p.workerMux.ProcessTask(t.Context(), task.NewAlertNotifyTask([]byte(`{"status":"firing","alerts":[]}`))); err != nil {
		t.Fatal(err)
	}
	if !<-got {
		t.Fatal("the webhook POST carries no valid X-Monitor-Signature")
	}
}

// TestWorkerRepeatsWithConfiguredInterval: the sweep, as built from the configuration,
// sends again an alert whose last firing notice is older than MONITOR_ALERT_REPEAT_EVERY.
func TestWorkerRepeatsWithConfiguredInterval(t *testing.T) {
	got := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read webhook body: %v", err)
		}
		got <- string(body)
	}))
	defer hook.Close()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.AlertWebhookURL = hook.URL
	cfg.AlertRepeatEvery = time.Hour
	cfg.AlertGroupWait = 0 // the repeat goes out at this sweep, not a group wait later
	// The worker refuses a database without the schema: migrate it as `monitor migrate` would.
	if err := migrate(t.Context(), cfg, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	p, err := build(t.Context(), roleWorker, cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.close(); err != nil {
			t.Error(err)
		}
	}()
	if err := model.Migrate(p.db, model.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	key, last := model.AlertOffline+":STILLDOWN", time.Now().Add(-2*time.Hour)
	a := model.Alert{Kind: model.AlertOffline, SN: "STILLDOWN", State: model.AlertFiring, StartsAt: last, NotifiedAt: &last, FiringKey: &key}
	if err := p.db.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	if err := p.worker.Start(p.workerMux); err != nil {
		t.Fatal(err)
	}
	defer p.worker.Shutdown()
	if err := p.workerMux.ProcessTask(t.Context(), asynq.NewTask(task.TypeSweep, nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-got:
		if !strings.Contains(body, `"sn":"STILLDOWN"`) || !strings.Contains(body, `"status":"firing"`) {
			t.Fatalf("webhook got %s", body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the alert still firing was not sent again")
	}
}
