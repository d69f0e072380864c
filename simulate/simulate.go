// Package simulate is a terminal-fleet simulator and load generator.
package simulate

import (
	"context"
	"errors"
	"io"
)

// Run runs the simulator with the command-line args and prints its report to out.
func Run(ctx context.Context, args []string, out io.Writer) error {
	return errors.New("simulate: not built yet")
}
