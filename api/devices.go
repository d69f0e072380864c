package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"monitor/model"
)

// deviceJSON is one device as the operator API shows it: identity, the online state as
// the database sees it, and the newest report in the terminal's own field names.
type deviceJSON struct {
	SN        string     `json:"sn"`
	Tenant    uint32     `json:"tenant"`
	City      string     `json:"city"`
	Type      string     `json:"type"`
	Online    bool       `json:"online"`
	LastSeen  time.Time  `json:"lastSeen"`
	FirstSeen time.Time  `json:"firstSeen"`
	Report    reportJSON `json:"report"`
}

// reportJSON is one report in the terminal's own field names (so "id" is the terminal
// type, as on the wire).
type reportJSON struct {
	SN     string `json:"sn"`
	Pos    string `json:"pos"`
	City   string `json:"city"`
	Type   string `json:"id"`
	Unum1  uint32 `json:"unum1"`
	Unum2  uint32 `json:"unum2"`
	NDate  string `json:"ndate"`
	NTime  string `json:"ntime"`
	Amount uint32 `json:"amount"`
	Count  uint32 `json:"count"`
	Line   uint32 `json:"line"`
	STime  string `json:"stime"`
	CTime  string `json:"ctime"`
	Tenant uint32 `json:"tenant"`
}

// historyJSON is one row of tb_status: its row id, when the API accepted it, and the report.
type historyJSON struct {
	Seq        uint64     `json:"seq"`
	AcceptedAt time.Time  `json:"acceptedAt"`
	Report     reportJSON `json:"report"`
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
	return time.Now().UTC().Add(-s.cfg.OfflineAfter)
}

// listDevices serves GET /api/v1/devices: the fleet in sn order with keyset pagination,
// so a page never repeats or skips a device when others are added between requests.
//
// Online means devices.last_seen is within MONITOR_OFFLINE_AFTER: the database's view,
// which trails the API by the ingest lag (normally a few seconds).
func (s *Server) listDevices(c echo.Context) error {
	p, err := newParams(c.QueryParams(), "state", "tenant", "city", "type", "limit", "cursor")
	if err != nil {
		return badRequest(err)
	}
	state, err := p.oneOf("state", "online", "offline")
	if err != nil {
		return badRequest(err)
	}
	tenant, hasTenant, err := p.uint32Param("tenant")
	if err != nil {
		return badRequest(err)
	}
	city, err := p.text("city", maxCityLen)
	if err != nil {
		return badRequest(err)
	}
	typ, err := p.text("type", maxTypeLen)
	if err != nil {
		return badRequest(err)
	}
	limit, err := p.limit()
	if err != nil {
		return badRequest(err)
	}
	after, err := deviceCursor(p.get("cursor"))
	if err != nil {
		return badRequest(err)
	}

	cutoff := s.offlineCutoff()
	q := s.db.WithContext(c.Request().Context()).Model(&model.Device{})
	switch state {
	case "online":
		q = q.Where("last_seen >= ?", cutoff)
	case "offline":
		q = q.Where("last_seen < ?", cutoff)
	}
	if hasTenant {
		q = q.Where("tenant = ?", tenant)
	}
	if city != "" {
		q = q.Where("city = ?", city)
	}
	if typ != "" {
		q = q.Where("tyid = ?", typ)
	}
	if after != "" {
		q = q.Where("sn > ?", after)
	}
	var rows []model.Device
	if err := q.Order("sn").Limit(limit + 1).Find(&rows).Error; err != nil {
		return dbError("list devices", err)
	}
	out := deviceList{Items: make([]deviceJSON, 0, min(len(rows), limit))}
	for i := range rows {
		if i == limit {
			out.NextCursor = encodeCursor(cursorDevices, rows[limit-1].SN)
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
	if err := validSN(sn); err != nil {
		return nil, badRequest(err)
	}
	var d model.Device
	err := s.db.WithContext(c.Request().Context()).Where("sn = ?", sn).Take(&d).Error
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
	p, err := newParams(c.QueryParams(), "from", "to", "limit", "cursor")
	if err != nil {
		return badRequest(err)
	}
	from, err := p.timeParam("from", s.loc, false)
	if err != nil {
		return badRequest(err)
	}
	to, err := p.timeParam("to", s.loc, true)
	if err != nil {
		return badRequest(err)
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return errorf(http.StatusBadRequest, "to: must be after from")
	}
	limit, err := p.limit()
	if err != nil {
		return badRequest(err)
	}
	before, err := idCursor(cursorReports, p.get("cursor"))
	if err != nil {
		return badRequest(err)
	}
	d, err := s.findDevice(c)
	if err != nil {
		return err
	}

	q := s.db.WithContext(c.Request().Context()).Model(&model.Status{}).Where("sn = ?", d.SN)
	if !from.IsZero() {
		q = q.Where("accepted_at >= ?", from)
	}
	if !to.IsZero() {
		q = q.Where("accepted_at < ?", to)
	}
	if before != 0 {
		q = q.Where("id < ?", before)
	}
	var rows []model.Status
	if err := q.Order("id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return dbError("list reports", err)
	}
	out := reportList{Items: make([]historyJSON, 0, min(len(rows), limit))}
	for i := range rows {
		if i == limit {
			out.NextCursor = encodeCursor(cursorReports, strconv.FormatUint(rows[limit-1].ID, 10))
			break
		}
		out.Items = append(out.Items, newHistoryJSON(&rows[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func newDeviceJSON(d *model.Device, cutoff time.Time) deviceJSON {
	return deviceJSON{
		SN: d.SN, Tenant: d.Tenant, City: d.City, Type: d.TyID,
		Online:    !d.LastSeen.Before(cutoff),
		LastSeen:  d.LastSeen.UTC(),
		FirstSeen: d.FirstSeen.UTC(),
		Report: reportJSON{
			SN: d.SN, Pos: d.PosNo, City: d.City, Type: d.TyID, Unum1: d.Unum1, Unum2: d.Unum2,
			NDate: d.NDate, NTime: d.NTime, Amount: d.Amount, Count: d.Count, Line: d.Line,
			STime: d.STime, CTime: d.CTime, Tenant: d.Tenant,
		},
	}
}

func newHistoryJSON(r *model.Status) historyJSON {
	return historyJSON{
		Seq: r.ID, AcceptedAt: r.AcceptedAt.UTC(),
		Report: reportJSON{
			SN: r.SN, Pos: r.PosNo, City: r.City, Type: r.TyID, Unum1: r.Unum1, Unum2: r.Unum2,
			NDate: r.NDate, NTime: r.NTime, Amount: r.Amount, Count: r.Count, Line: r.Line,
			STime: r.STime, CTime: r.CTime, Tenant: r.Tenant,
		},
	}
}

// badRequest turns a parameter error, whose text names the parameter, into a 400.
func badRequest(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: err.Error()}
}

// dbError is a database failure: a 503 that hides the cause from the client and logs it.
func dbError(what string, err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Msg: "database unavailable: retry later", Err: fmt.Errorf("%s: %w", what, err)}
}
