package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"monitor/command"
	"monitor/model"
)

// commandRequest is the body of POST /api/v1/devices/{sn}/commands.
type commandRequest struct {
	Type string `json:"type"`
}

// createCommand opens a command for a device and answers 201 with it. Creating is
// idempotent: when the device already has an open command of that type (one per device
// and type), the answer is the same 201 with that command.
func (s *Server) createCommand(c echo.Context) error {
	sn := c.Param("sn")
	if err := model.ValidateSN(sn); err != nil {
		return badRequest(err)
	}
	var req commandRequest
	dec := json.NewDecoder(io.LimitReader(c.Request().Body, 4<<10))
	if err := dec.Decode(&req); err != nil {
		return errorf(http.StatusBadRequest, "bad JSON: want {\"type\":\"upload_logs\"}")
	}
	if req.Type != model.CommandUploadLogs {
		return errorf(http.StatusBadRequest, "type: %q is not a command type (want upload_logs)", model.Clip(req.Type))
	}
	ctx := c.Request().Context()
	known, err := s.knownDevice(c, sn)
	if err != nil {
		return err
	}
	if !known {
		return errorf(http.StatusNotFound, "sn: no device %s has reported", sn)
	}
	cmd, _, err := s.opt.Commands.Create(ctx, sn, req.Type, command.OriginOperator)
	if err != nil {
		return dbError("create command", err)
	}
	return c.JSON(http.StatusCreated, cmd)
}

// knownDevice reports whether sn has reported: it is in the devices table, or its
// report was accepted and still waits in the queue.
func (s *Server) knownDevice(c echo.Context, sn string) (bool, error) {
	ctx := c.Request().Context()
	err := s.opt.DB.WithContext(ctx).Select("sn").Where("sn = ?", sn).Take(&model.Device{}).Error
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return false, dbError("find device", err)
	}
	seen, err := s.opt.Accepter.LastSeen(ctx, []string{sn})
	if err != nil {
		return false, &Error{Status: http.StatusServiceUnavailable, Msg: "redis unavailable: retry later", Err: err}
	}
	return !seen[0].IsZero(), nil
}

// listCommands answers GET /api/v1/commands?sn=&state=&limit=&cursor=, newest first.
// A command's state is the database's: a delivery shows as delivered after the next
// command sync (MONITOR_COMMAND_SYNC_EVERY).
func (s *Server) listCommands(c echo.Context) error {
	p, page, q, err := s.idListing(c, "cmd", "sn", "state")
	if err != nil {
		return err
	}
	switch st := p.get("state"); st {
	case "":
	case model.CommandPending, model.CommandDelivered, model.CommandDone, model.CommandExpired:
		q = q.Where("state = ?", st)
	default:
		return errorf(http.StatusBadRequest, "state: %q is not pending, delivered, done or expired", model.Clip(st))
	}
	var rows []model.Command
	if err := q.Find(&rows).Error; err != nil {
		return dbError("list commands", err)
	}
	return c.JSON(http.StatusOK, pageOf(rows, page, "cmd", func(r *model.Command) uint64 { return r.ID }))
}
