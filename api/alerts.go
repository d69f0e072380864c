package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"monitor/model"
)

// listAlerts answers GET /api/v1/alerts?state=firing|resolved&kind=&sn=&limit=&cursor=, newest first.
func (s *Server) listAlerts(c echo.Context) error {
	p, page, err := parseIDPage(c.QueryParams(), "alert", "state", "kind", "sn")
	if err != nil {
		return err
	}
	q := s.db.WithContext(c.Request().Context()).Order("id DESC").Limit(page.limit + 1)
	if page.before > 0 {
		q = q.Where("id < ?", page.before)
	}
	switch st := p.get("state"); st {
	case "":
	case model.AlertFiring, model.AlertResolved:
		q = q.Where("state = ?", st)
	default:
		return errorf(http.StatusBadRequest, "state: %q is not firing or resolved", clip(st))
	}
	switch k := p.get("kind"); k {
	case "":
	case model.AlertOffline, model.AlertUnsent:
		q = q.Where("kind = ?", k)
	default:
		return errorf(http.StatusBadRequest, "kind: %q is not device_offline or unsent_records", clip(k))
	}
	sn, err := snFilter(p)
	if err != nil {
		return err
	}
	if sn != "" {
		q = q.Where("sn = ?", sn)
	}
	var rows []model.Alert
	if err := q.Find(&rows).Error; err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Msg: "database unavailable: retry later", Err: err}
	}
	return c.JSON(http.StatusOK, pageOf(rows, page, "alert", func(r *model.Alert) uint64 { return r.ID }))
}
