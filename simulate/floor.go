package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"

	"monitor/model"
)

// floorReply is the API's answer to a report with no command.
var floorReply = []byte(`{"code":0,"msg":"ok","cmd":0,"cmdId":0}`)

// NewFloor returns the floor monitor is measured against: an Echo server whose only
// route reads each report's body, decodes it with encoding/json into model.Report and
// answers the API's fixed reply, storing nothing. No design that stores a report can
// beat it; bench/run.sh runs it beside monitor and the baseline in every round.
func NewFloor() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/open/statusUpload", func(c echo.Context) error {
		body, err := io.ReadAll(io.LimitReader(c.Request().Body, 64<<10))
		if err != nil {
			return c.JSONBlob(http.StatusBadRequest, []byte(`{"code":400,"msg":"body: could not be read"}`))
		}
		var r model.Report
		if err := json.Unmarshal(body, &r); err != nil {
			return c.JSONBlob(http.StatusBadRequest, []byte(`{"code":400,"msg":"bad JSON"}`))
		}
		return c.JSONBlob(http.StatusOK, floorReply)
	})
	return e
}

// runFloor parses the flags of "monitor simulate floor" and serves until ctx is done.
func runFloor(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("monitor simulate floor", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", ":8877", "listen address")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	fmt.Fprintf(out, "floor listening on %s: POST /open/statusUpload, decode and reply, nothing stored\n", ln.Addr())
	return serve(ctx, ln, NewFloor(), "floor")
}
