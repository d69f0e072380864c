package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"monitor/model"
)

// listAlerts answers GET /api/v1/alerts?state=firing|resolved&kind=&sn=&limit=&cursor=, newest first.
func (s *Server) listAlerts(c echo.Context) error {
	p, page, q, err := s.idListing(c, "alert", "state", "kind", "sn")
	if err != nil {
		return err
	}
	switch st := p.get("state"); st {
	case "":
	case model.AlertFiring, model.AlertResolved:
		q = q.Where("state = ?", st)
	default:
		return errorf(http.StatusBadRequest, "state: %q is not firing or resolved", model.Clip(st))
	}
	switch k := p.get("kind"); k {
	case "":
	case model.AlertOffline, model.AlertUnsent, model.AlertIntakeDown:
		q = q.Where("kind = ?", k)
	default:
		return errorf(http.StatusBadRequest, "kind: %q is not device_offline, unsent_records or intake_down", model.Clip(k))
	}
	var rows []model.Alert
	if err := q.Find(&rows).Error; err != nil {
		return dbError("list alerts", err)
	}
	return c.JSON(http.StatusOK, pageOf(rows, page, "alert", func(r *model.Alert) uint64 { return r.ID }))
}
