package task

import (
	"time"

	"github.com/hibiken/asynq"
)

// Task types of the periodic jobs (queue periodic) and of alert notifications (queue notify).
const (
	// TypeSweep finds devices that went silent or came back and raises or resolves alerts.
	TypeSweep = "job:sweep"
	// TypeCommandSync records command deliveries in the database and expires old commands.
	TypeCommandSync = "job:command_sync"
	// TypeLogPull asks the selected devices for their logs.
	TypeLogPull = "job:log_pull"
	// TypeRetention deletes old history, commands, alerts and log files.
	TypeRetention = "job:retention"
	// TypeAlertNotify posts one grouped alert notification to the webhook.
	TypeAlertNotify = "alert:notify"
)

// NotifyMaxRetry bounds the attempts at one notification; with the worker's backoff the
// last attempt comes about ten minutes after the first, then the task is archived.
const NotifyMaxRetry = 10

// notifyTimeout bounds one webhook call.
const notifyTimeout = 30 * time.Second

// NewAlertNotifyTask returns the notification task whose payload is the webhook's JSON body.
func NewAlertNotifyTask(body []byte) *asynq.Task {
	return asynq.NewTask(TypeAlertNotify, body, asynq.Queue(QueueNotify),
		asynq.MaxRetry(NotifyMaxRetry), asynq.Timeout(notifyTimeout))
}
