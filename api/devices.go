package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"monitor/model"
)

// deviceJSON is one device as the operator API shows it: identity, the online state as
// the database sees it, and the newest report in the terminal's own field names.
type deviceJSON struct {
	SN        string       `json:"sn"`
	Tenant    uint32       `json:"tenant"`
	City      string       `json:"city"`
	Type      string       `json:"type"`
	Online    bool         `json:"online"`
	LastSeen  time.Time    `json:"lastSeen"`
	FirstSeen time.Time    `json:"firstSeen"`
	Report    model.Report `json:"report"` // in the terminal's own field names
}

// historyJSON is one row of tb_status: its row id, when the API accepted it, and the report.
type historyJSON struct {
	Seq        uint64       `json:"seq"`
	AcceptedAt time.Time    `json:"acceptedAt"`
	Report     model.Report `json:"report"`
}

// deviceList is one page of devices; NextCursor is empty on the last page. Every
// operator listing has this shape: items and nextCursor.
type deviceList struct {
	Items      []deviceJSON `json:"items"`
	NextCursor string       `json:"nextCursor,omitempty"`
}

// reportList is one page of a device's reports, newest first.
type reportList struct {
	Items      []historyJSON `json:"items"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

// offlineCutoff is the last-seen time before which a device counts as offline.
func (s *Server) offlineCutoff() time.Time {
	return time.Now().UTC().Add(-s.opt.OfflineAfter)
}

// listDevices serves GET /api/v1/devices: the fleet in sn order with keyset pagination,
// so a page never repeats or skips a device when others are added between requests.
//
// Online means devices.last_seen is within MONITOR_OFFLINE_AFTER: the database's view,
// which trails the API by the ingest lag (normally a few seconds).
func (s *Server) listDevices(c echo.Context) error {
	dq, err := parseDeviceQuery(c.QueryParams())
	if err != nil {
		return badRequest(err)
	}
	cutoff := s.offlineCutoff()
	q := s.opt.DB.WithContext(c.Request().Context()).Model(&model.Device{})
	switch dq.state {
	case "online":
		q = q.Where("last_seen >= ?", cutoff)
	case "offline":
		q = q.Where("last_seen < ?", cutoff)
	}
	if dq.hasTenant {
		q = q.Where("tenant = ?", dq.tenant)
	}
	if dq.city != "" {
		q = q.Where("city = ?", dq.city)
	}
	if dq.typ != "" {
		q = q.Where("tyid = ?", dq.typ)
	}
	if dq.after != "" {
		q = q.Where("sn > ?", dq.after)
	}
	var rows []model.Device
	if err := q.Order("sn").Limit(dq.limit + 1).Find(&rows).Error; err != nil {
		return dbError("list devices", err)
	}
	out := deviceList{Items: make([]deviceJSON, 0, min(len(rows), dq.limit))}
	for i := range rows {
		if i == dq.limit {
			out.NextCursor = encodeCursor(cursorDevices, rows[dq.limit-1].SN)
			break
		}
		out.Items = append(out.Items, newDeviceJSON(&rows[i], cutoff))
	}
	return c.JSON(http.StatusOK, out)
}

// getDevice serves GET /api/v1/devices/{sn}: the newest report, online state and last seen.
func (s *Server) getDevice(c echo.Context) error {
	if _, err := newParams(c.QueryParams()); err != nil {
		return badRequest(err)
	}
	d, err := s.findDevice(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newDeviceJSON(d, s.offlineCutoff()))
}

// findDevice loads the device named by the sn path parameter: 400 for a malformed sn,
// 404 for an unknown one.
func (s *Server) findDevice(c echo.Context) (*model.Device, error) {
	sn := c.Param("sn")
	if err := model.ValidateSN(sn); err != nil {
		return nil, badRequest(err)
	}
	var d model.Device
	err := s.opt.DB.WithContext(c.Request().Context()).Where("sn = ?", sn).Take(&d).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errorf(http.StatusNotFound, "sn: no device %s", sn)
	}
	if err != nil {
		return nil, dbError("find device", err)
	}
	return &d, nil
}

// listReports serves GET /api/v1/devices/{sn}/reports: the device's history from
// tb_status, newest first, optionally within [from, to) on the accepted time. Pages are
// keyed on the row id, so reports stored meanwhile never shift a later page.
func (s *Server) listReports(c echo.Context) error {
	rq, err := parseReportQuery(c.QueryParams(), s.opt.Location)
	if err != nil {
		return badRequest(err)
	}
	d, err := s.findDevice(c)
	if err != nil {
		return err
	}

	var rows []model.Status
	if err := reportsQuery(s.opt.DB.WithContext(c.Request().Context()), d.SN, rq).Find(&rows).Error; err != nil {
		return dbError("list reports", err)
	}
	out := reportList{Items: make([]historyJSON, 0, min(len(rows), rq.limit))}
	for i := range rows {
		if i == rq.limit {
			out.NextCursor = encodeCursor(cursorReports, strconv.FormatUint(rows[rq.limit-1].ID, 10))
			break
		}
		out.Items = append(out.Items, newHistoryJSON(&rows[i]))
	}
	return c.JSON(http.StatusOK, out)
}

// ndateSlack is how far a report's own date (ndate, the terminal's local date) may be
// from the UTC date the API accepted it on and still be found by a from/to query: a day
// covers every time zone and a terminal clock a few hours off.
const ndateSlack = 24 * time.Hour

// reportsQuery is the query of one page of sn's history. from and to bound the accepted
// time and, with ndateSlack to spare, ndate, so MySQL reads only the partitions of the
// days asked for (tb_status is partitioned on ndate). A report whose clock was more than
// a day off when it was accepted shows only in listings without from and to.
func reportsQuery(db *gorm.DB, sn string, rq reportQuery) *gorm.DB {
	q := db.Model(&model.Status{}).Where("sn = ?", sn)
	if rq.hasFrom {
		q = q.Where("accepted_at >= ? AND ndate >= ?", rq.from, rq.from.UTC().Add(-ndateSlack).Format(time.DateOnly))
	}
	if rq.hasTo {
		q = q.Where("accepted_at < ? AND ndate <= ?", rq.to, rq.to.UTC().Add(ndateSlack).Format(time.DateOnly))
	}
	if rq.before != 0 {
		q = q.Where("id < ?", rq.before)
	}
	return q.Order("id DESC").Limit(rq.limit + 1)
}

func newDeviceJSON(d *model.Device, cutoff time.Time) deviceJSON {
	return deviceJSON{
		SN: d.SN, Tenant: d.Tenant, City: d.City, Type: d.TyID,
		Online:    !d.LastSeen.Before(cutoff),
		LastSeen:  d.LastSeen.UTC(),
		FirstSeen: d.FirstSeen.UTC(),
		Report: model.Report{
			SN: d.SN, Pos: d.PosNo, City: d.City, Type: d.TyID, Unum1: d.Unum1, Unum2: d.Unum2,
			NDate: d.NDate, NTime: d.NTime, Amount: d.Amount, Count: d.Count, Line: d.Line,
			STime: d.STime, CTime: d.CTime, Tenant: d.Tenant,
		},
	}
}

func newHistoryJSON(r *model.Status) historyJSON {
	return historyJSON{
		Seq: r.ID, AcceptedAt: r.AcceptedAt.UTC(),
		Report: model.Report{
			SN: r.SN, Pos: r.PosNo, City: r.City, Type: r.TyID, Unum1: r.Unum1, Unum2: r.Unum2,
			NDate: r.NDate, NTime: r.NTime, Amount: r.Amount, Count: r.Count, Line: r.Line,
			STime: r.STime, CTime: r.CTime, Tenant: r.Tenant,
		},
	}
}

// deviceQuery is a validated GET /api/v1/devices query.
type deviceQuery struct {
	state     string // "", "online" or "offline"
	tenant    uint32
	hasTenant bool
	city, typ string
	limit     int
	after     string // the last sn of the previous page
}

// parseDeviceQuery validates the query of GET /api/v1/devices; the error names the parameter.
func parseDeviceQuery(q url.Values) (dq deviceQuery, err error) {
	p, err := newParams(q, "state", "tenant", "city", "type", "limit", "cursor")
	if err != nil {
		return dq, err
	}
	if dq.state, err = p.oneOf("state", "online", "offline"); err != nil {
		return dq, err
	}
	if dq.tenant, dq.hasTenant, err = p.uint32Param("tenant"); err != nil {
		return dq, err
	}
	if dq.city, err = p.text("city", model.MaxCityLen); err != nil {
		return dq, err
	}
	if dq.typ, err = p.text("type", model.MaxTypeLen); err != nil {
		return dq, err
	}
	if dq.limit, err = p.limit(); err != nil {
		return dq, err
	}
	dq.after, err = deviceCursor(p.get("cursor"))
	return dq, err
}

// reportQuery is a validated GET /api/v1/devices/{sn}/reports query.
type reportQuery struct {
	from, to       time.Time // the range is [from, to)
	hasFrom, hasTo bool      // whether each bound was given: any instant, even the zero time, is a bound
	limit          int
	before         uint64 // the last id of the previous page, 0 for the first page
}

// parseReportQuery validates the query of GET /api/v1/devices/{sn}/reports; dates
// without a time are days in loc.
func parseReportQuery(q url.Values, loc *time.Location) (rq reportQuery, err error) {
	p, err := newParams(q, "from", "to", "limit", "cursor")
	if err != nil {
		return rq, err
	}
	if rq.from, err = p.timeParam("from", loc, false); err != nil {
		return rq, err
	}
	if rq.to, err = p.timeParam("to", loc, true); err != nil {
		return rq, err
	}
	rq.hasFrom, rq.hasTo = p.has("from"), p.has("to")
	if rq.hasFrom && rq.hasTo && !rq.from.Before(rq.to) {
		return rq, errors.New("to: must be after from")
	}
	if rq.limit, err = p.limit(); err != nil {
		return rq, err
	}
	rq.before, err = idCursor(cursorReports, p.get("cursor"))
	return rq, err
}

// moveRequest is the body of PATCH /api/v1/devices/{sn}. Tenant is a pointer so that a
// body without it is told apart from a move to tenant 0.
type moveRequest struct {
	Tenant *uint32 `json:"tenant"`
}

// moveDevice serves PATCH /api/v1/devices/{sn} {"tenant":N}: it moves the device to
// another tenant, in the database first and then in the binding on Redis that status
// reports are checked against, and answers 200 with the device. When Redis fails after
// the database was updated the answer is a 503: the database has the new tenant, but
// reports are still checked against the old one until the move is repeated (it is
// idempotent) or Redis re-seeds the bindings after losing its data.
func (s *Server) moveDevice(c echo.Context) error {
	if _, err := newParams(c.QueryParams()); err != nil {
		return badRequest(err)
	}
	sn := c.Param("sn")
	if err := model.ValidateSN(sn); err != nil {
		return badRequest(err)
	}
	var req moveRequest
	dec := json.NewDecoder(io.LimitReader(c.Request().Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field == "tenant" {
			return errorf(http.StatusBadRequest, "tenant: not a tenant number (0 to 4294967295)")
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return errorf(http.StatusBadRequest, "%s: unknown field; the body is {\"tenant\":N}", model.Clip(strings.Trim(f, `"`)))
		}
		return errorf(http.StatusBadRequest, "tenant: bad JSON body, want {\"tenant\":N}")
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "tenant: the body must be one JSON object {\"tenant\":N}, with nothing after it")
	}
	if req.Tenant == nil {
		return errorf(http.StatusBadRequest, "tenant: required, want {\"tenant\":N}")
	}
	ctx := c.Request().Context()
	d, err := s.findDevice(c)
	if err != nil {
		return err
	}
	// The row is updated and Redis's binding moved inside one transaction: if Redis fails
	// the update rolls back and nothing moved. The UPDATE holds the row until the commit,
	// so a concurrent move of the same device sets Redis after this one commits.
	redisMoved := false
	err = s.opt.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&model.Device{}).Where("sn = ?", sn).Update("tenant", *req.Tenant).Error; err != nil {
			return dbError("move device", err)
		}
		if err := s.opt.Fleet.SetTenant(ctx, sn, *req.Tenant); err != nil {
			return &Error{Status: http.StatusServiceUnavailable, Msg: "redis unavailable, the device was not moved: retry later", Err: err}
		}
		redisMoved = true
		return nil
	})
	if err != nil {
		if redisMoved {
			// The commit failed after Redis moved: put Redis back to the database's tenant.
			if rerr := s.opt.Fleet.SetTenant(context.WithoutCancel(ctx), sn, d.Tenant); rerr != nil {
				s.log.ErrorContext(ctx, "device move failed to commit and its tenant binding could not be restored; the next move or a re-seed fixes it",
					"sn", sn, "tenant", d.Tenant, "err", rerr)
			}
		}
		var apiErr *Error
		if errors.As(err, &apiErr) {
			return err
		}
		return dbError("move device", err)
	}
	s.log.InfoContext(ctx, "device moved to another tenant", "sn", sn, "from", d.Tenant, "to", *req.Tenant)
	d.Tenant = *req.Tenant
	return c.JSON(http.StatusOK, newDeviceJSON(d, s.offlineCutoff()))
}
