package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// SignatureHeader carries, when a secret is configured, "sha256=" and the hex
// HMAC-SHA256 of the request body keyed with the secret.
const SignatureHeader = "X-Monitor-Signature"

// NotifierOptions are the notifier's settings.
type NotifierOptions struct {
	// URL is MONITOR_ALERT_WEBHOOK_URL; empty refuses every task (nothing is enqueued then).
	URL string
	// Secret is MONITOR_ALERT_WEBHOOK_SECRET; when set each POST is signed in SignatureHeader.
	Secret string
	// Client posts; nil means a new http.Client. The call is bounded by the task's
	// deadline (task.NotifyTimeout), so it should set no Timeout of its own.
	Client *http.Client
}

// Notifier posts notification tasks to the alert webhook.
type Notifier struct {
	url    string
	secret []byte
	client *http.Client
}

// NewNotifier returns a Notifier posting as opt says.
func NewNotifier(opt NotifierOptions) (*Notifier, error) {
	if opt.URL != "" {
		u, err := url.Parse(opt.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alert: webhook %q is not an http(s) URL", opt.URL)
		}
	}
	if opt.Client == nil {
		opt.Client = &http.Client{}
	}
	n := &Notifier{url: opt.URL, client: opt.Client}
	if opt.Secret != "" {
		n.secret = []byte(opt.Secret)
	}
	return n, nil
}

// sign returns the SignatureHeader value of body under secret.
func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ProcessTask is the asynq handler of task.TypeAlertNotify. A network error, a 5xx,
// 408 or 429 is returned for a retry with backoff; any other 4xx means the receiver
// refuses this body and is not retried. asynq archives the task after the last retry.
func (n *Notifier) ProcessTask(ctx context.Context, t *asynq.Task) error {
	err := n.post(ctx, t)
	countNotification(ctx, err)
	return err
}

// The notifier's metrics; the process that runs workers registers Collectors.
var notifications = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "monitor_notifications_total",
	Help: "Webhook notification attempts by result: sent, failed (to be retried) or archived (failed for the last time).",
}, []string{"result"})

func init() {
	for _, r := range []string{"sent", "failed", "archived"} {
		notifications.WithLabelValues(r) // shown at 0 before the first notification
	}
}

// Collectors are the alert package's metrics.
func Collectors() []prometheus.Collector { return []prometheus.Collector{notifications} }

// countNotification counts one attempt by its outcome: an error that asynq will not
// retry, or the last retry's, archives the notification.
func countNotification(ctx context.Context, err error) {
	switch {
	case err == nil:
		notifications.WithLabelValues("sent").Inc()
	case errors.Is(err, asynq.SkipRetry):
		notifications.WithLabelValues("archived").Inc()
	default:
		retried, _ := asynq.GetRetryCount(ctx)
		limit, ok := asynq.GetMaxRetry(ctx)
		if ok && retried >= limit {
			notifications.WithLabelValues("archived").Inc()
		} else {
			notifications.WithLabelValues("failed").Inc()
		}
	}
}

func (n *Notifier) post(ctx context.Context, t *asynq.Task) error {
	if n.url == "" {
		return fmt.Errorf("no MONITOR_ALERT_WEBHOOK_URL on this worker: %w", asynq.SkipRetry)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(t.Payload()))
	if err != nil {
		return fmt.Errorf("webhook request: %v: %w", err, asynq.SkipRetry)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "monitor-alerts")
	if n.secret != nil {
		req.Header.Set(SignatureHeader, sign(n.secret, t.Payload()))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	// Drain a little so the connection can be reused.
	_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if cerr := resp.Body.Close(); rerr == nil {
		rerr = cerr
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		return fmt.Errorf("webhook answered %d", code)
	case code >= 400:
		return fmt.Errorf("webhook refused the notification with %d: %w", code, asynq.SkipRetry)
	default:
		return fmt.Errorf("webhook answered %d (read body: %v)", code, rerr)
	}
}
