package alert

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/hibiken/asynq"
)

// Notifier posts notification tasks to the alert webhook.
type Notifier struct {
	url    string
	client *http.Client
}

// NewNotifier returns a Notifier posting to url with client. The call is bounded by the
// task's deadline (task.NotifyTimeout), so client should set no Timeout of its own.
func NewNotifier(url string, client *http.Client) *Notifier {
	return &Notifier{url: url, client: client}
}

// ProcessTask is the asynq handler of task.TypeAlertNotify. A network error, a 5xx,
// 408 or 429 is returned for a retry with backoff; any other 4xx means the receiver
// refuses this body and is not retried. asynq archives the task after the last retry.
func (n *Notifier) ProcessTask(ctx context.Context, t *asynq.Task) error {
	if n.url == "" {
		return fmt.Errorf("no MONITOR_ALERT_WEBHOOK_URL on this worker: %w", asynq.SkipRetry)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(t.Payload()))
	if err != nil {
		return fmt.Errorf("webhook request: %v: %w", err, asynq.SkipRetry)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "monitor-alerts")
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
