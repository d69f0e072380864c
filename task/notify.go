package task

import (
	"time"

	"github.com/hibiken/asynq"
)

// NotifyMaxRetry bounds the attempts at one notification; with the worker's backoff the
// last attempt comes about ten minutes after the first, then the task is archived.
const NotifyMaxRetry = 10

// NotifyTimeout is the one bound on a webhook call: the task's deadline, which asynq puts
// on the context the handler posts with. Neither the handler nor its HTTP client adds
// another, so an operator reading asynqmon sees the timeout that applies.
const NotifyTimeout = 20 * time.Second

// NewAlertNotifyTask returns the notification task whose payload is the webhook's JSON body.
func NewAlertNotifyTask(body []byte, opts ...asynq.Option) *asynq.Task {
	return asynq.NewTask(TypeAlertNotify, body, append([]asynq.Option{asynq.Queue(QueueNotify),
		asynq.MaxRetry(NotifyMaxRetry), asynq.Timeout(NotifyTimeout)}, opts...)...)
}
