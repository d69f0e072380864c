package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// Paging of the id-ordered listings (commands, logs, alerts): newest first, limit items
// per page, and an opaque cursor naming where the next page starts.
const (
	idPageDefault = 100
	idPageMax     = 1000
)

// idPage is the page wanted by a listing request.
type idPage struct {
	limit int
	// before is the id the page starts below; 0 for the first page.
	before uint64
}

// parseIDPage reads limit and cursor; kind keeps one listing's cursor off another.
func parseIDPage(limit, cursor, kind string) (idPage, error) {
	p := idPage{limit: idPageDefault}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > idPageMax {
			return p, errorf(http.StatusBadRequest, "limit: want a whole number from 1 to %d, got %q", idPageMax, clip(limit))
		}
		p.limit = n
	}
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		rest, ok := strings.CutPrefix(string(b), kind+":")
		id, perr := strconv.ParseUint(rest, 10, 64)
		if err != nil || !ok || perr != nil || id == 0 {
			return p, errorf(http.StatusBadRequest, "cursor: not a cursor returned by this listing")
		}
		p.before = id
	}
	return p, nil
}

// idPageCursor returns the cursor of the page after one that ended at lastID.
func idPageCursor(kind string, lastID uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatUint(lastID, 10)))
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

// checkSN applies the report's sn rule to an sn in a path or query.
func checkSN(sn string) error {
	if sn == "" {
		return errorf(http.StatusBadRequest, "sn: required")
	}
	if len(sn) > maxSNLen {
		return errorf(http.StatusBadRequest, "sn: longer than %d characters", maxSNLen)
	}
	for i := 0; i < len(sn); i++ {
		if c := sn[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return errorf(http.StatusBadRequest, "sn: only A-Z a-z 0-9 _ - are allowed")
		}
	}
	return nil
}
