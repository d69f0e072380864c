package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"monitor/model"
)

// listAlerts answers GET /api/v1/alerts?state=firing|resolved&kind=&sn=&limit=&cursor=, newest first.
func (s *Server) listAlerts(c echo.Context) error {
	page, err := parseIDPage(c.QueryParam("limit"), c.QueryParam("cursor"), "alert")
	if err != nil {
		return err
	}
	q := s.db.WithContext(c.Request().Context()).Order("id DESC").Limit(page.limit + 1)
	if page.before > 0 {
		q = q.Where("id < ?", page.before)
	}
	switch st := c.QueryParam("state"); st {
	case "":
	case model.AlertFiring, model.AlertResolved:
		q = q.Where("state = ?", st)
	default:
		return errorf(http.StatusBadRequest, "state: %q is not firing or resolved", clip(st))
	}
	switch k := c.QueryParam("kind"); k {
	case "":
	case model.AlertOffline, model.AlertUnsent:
		q = q.Where("kind = ?", k)
	default:
		return errorf(http.StatusBadRequest, "kind: %q is not device_offline or unsent_records", clip(k))
	}
	if sn := c.QueryParam("sn"); sn != "" {
		if err := checkSN(sn); err != nil {
			return err
		}
		q = q.Where("sn = ?", sn)
	}
	var rows []model.Alert
	if err := q.Find(&rows).Error; err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Msg: "database unavailable: retry later", Err: err}
	}
	return c.JSON(http.StatusOK, pageOf(rows, page, "alert", func(r *model.Alert) uint64 { return r.ID }))
}
