// Package task turns monitor's domain values into asynq tasks and back: the queue names,
// the task types, and the payload encodings that the api, worker and scheduler share.
package task

// Queue names. Ingest is kept apart from periodic work so a backlog of reports never
// delays the offline sweep or an alert, and so operators can pause one without the other.
const (
	QueueIngest   = "ingest"
	QueuePeriodic = "periodic"
	QueueNotify   = "notify"
)

// Task types.
const (
	// TypeStatusReport is one terminal report; it waits in a group until aggregation.
	TypeStatusReport = "status:report"
	// TypeStatusBatch is what the aggregator makes of a group's reports.
	TypeStatusBatch = "status:batch"
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
