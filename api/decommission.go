package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"monitor/model"
)

// Decommissioner takes a device out of the fleet (alert.Decommissioner): by says who.
type Decommissioner interface {
	Decommission(ctx context.Context, sn, by string) error
}

// decommissionDevice serves DELETE /api/v1/devices/{sn}: the device leaves the live
// fleet state and the devices table, its firing alerts resolve (their resolved notices,
// marked decommissioned, go out with the next sweep), its open commands expire, and its
// history stays until retention. 204, 404 when the device is unknown, 503 when a store
// fails (repeat it: what was done stays done). A device that reports again is new.
func (s *Server) decommissionDevice(c echo.Context) error {
	if _, err := newParams(c.QueryParams()); err != nil {
		return badRequest(err)
	}
	sn := c.Param("sn")
	if err := model.ValidateSN(sn); err != nil {
		return badRequest(err)
	}
	err := s.opt.Decommissioner.Decommission(c.Request().Context(), sn, model.DecommissionedByOperator)
	switch {
	case errors.Is(err, model.ErrUnknownDevice):
		return errorf(http.StatusNotFound, "sn: no device %s", sn)
	case err != nil:
		return &Error{Status: http.StatusServiceUnavailable, Msg: "database or redis unavailable, the device may be partly decommissioned: retry", Err: err}
	}
	return c.NoContent(http.StatusNoContent)
}
