// Command monitor watches a fleet of field terminals: an HTTP API takes their status
// reports, asynq workers batch them into MySQL, and a scheduler runs the periodic jobs.
// The app package builds and runs each role; main only wires it to the process.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"monitor/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal starts the shutdown; once it has, the signals get their default
	// action again, so a second one ends the process at once, killed by that signal.
	context.AfterFunc(ctx, stop)
	err := app.Run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "monitor:", err)
		os.Exit(1)
	}
}
