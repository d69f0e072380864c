package api

import (
	"monitor/model"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"
)

// Paging of the id-ordered listings (commands, logs, alerts): newest first, limit items
// per page, and an opaque cursor naming where the next page starts.

// idPage is the page wanted by a listing request.
type idPage struct {
	limit int
	// before is the id the page starts below; 0 for the first page.
	before uint64
}

// parseIDPage reads the query of an id-ordered listing: limit, cursor and the route's
// filters, refusing any other parameter. kind keeps one listing's cursor off another.
func parseIDPage(q url.Values, kind string, filters ...string) (params, idPage, error) {
	p, err := newParams(q, append([]string{"limit", "cursor"}, filters...)...)
	if err != nil {
		return p, idPage{}, badRequest(err)
	}
	n, err := p.limit()
	if err != nil {
		return p, idPage{}, badRequest(err)
	}
	before, err := idCursor(kind, p.get("cursor"))
	if err != nil {
		return p, idPage{}, badRequest(err)
	}
	return p, idPage{limit: n, before: before}, nil
}

// idPageCursor returns the cursor of the page after one that ended at lastID.
func idPageCursor(kind string, lastID uint64) string {
	return encodeCursor(kind, strconv.FormatUint(lastID, 10))
}

// idListing starts the query of an id-ordered listing from the request: newest first,
// one row more than the page (to know whether another page follows), below the cursor,
// and filtered by sn when the route takes that filter and the request gives it.
func (s *Server) idListing(c echo.Context, kind string, filters ...string) (params, idPage, *gorm.DB, error) {
	p, page, err := parseIDPage(c.QueryParams(), kind, filters...)
	if err != nil {
		return p, page, nil, err
	}
	q := s.opt.DB.WithContext(c.Request().Context()).Order("id DESC").Limit(page.limit + 1)
	if page.before > 0 {
		q = q.Where("id < ?", page.before)
	}
	sn, err := snFilter(p)
	if err != nil {
		return p, page, nil, err
	}
	if sn != "" {
		q = q.Where("sn = ?", sn)
	}
	return p, page, q, nil
}

// snFilter validates an optional sn filter; "" means no filter.
func snFilter(p params) (string, error) {
	sn := p.get("sn")
	if sn == "" {
		return "", nil
	}
	if err := model.ValidateSN(sn); err != nil {
		return "", badRequest(err)
	}
	return sn, nil
}

// listing is the JSON shape of every id-ordered page; NextCursor is empty on the last page.
type listing[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// pageOf cuts rows (fetched with limit+1) to the page and sets the next cursor.
func pageOf[T any](rows []T, p idPage, kind string, id func(*T) uint64) listing[T] {
	out := listing[T]{Items: rows}
	if len(rows) > p.limit {
		out.Items = rows[:p.limit]
		out.NextCursor = idPageCursor(kind, id(&out.Items[p.limit-1]))
	}
	if out.Items == nil {
		out.Items = []T{}
	}
	return out
}
