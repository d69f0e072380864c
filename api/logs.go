package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"monitor/command"
	"monitor/model"
)

// logUploadTimeout replaces the server's 30 s read timeout for a log upload, which may
// be tens of megabytes over a slow mobile link.
const logUploadTimeout = 15 * time.Minute

// logUpload stores a terminal's log for its open command: POST /open/logUpload?sn=&cmdId=.
// The body streams to a temporary file in the log directory while its size and sha256
// are counted; past the limit it is refused with 413, and an empty one with 400, the file
// removed and the command left open. A cancelled request, or a shutdown of a server set
// up with CutUploadsOnShutdown (answered 503), cuts the upload the same way. The file is
// renamed to a name the server chooses, and the log row and the command's completion
// are written in one transaction.
func (s *Server) logUpload(c echo.Context) error {
	req := c.Request()
	ctx := req.Context()
	sn := c.QueryParam("sn")
	if err := model.ValidateSN(sn); err != nil {
		return badRequest(err)
	}
	// The key first, so that nobody without it can spend the device's rate budget.
	if err := s.checkLogUploadKey(c, sn); err != nil {
		return err
	}
	if err := s.checkDeviceRate(c, sn); err != nil {
		return err
	}
	raw := c.QueryParam("cmdId")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || id == 0 {
		return errorf(http.StatusBadRequest, "cmdId: %q is not a command id", model.Clip(raw))
	}
	if err := s.opt.Commands.Check(ctx, sn, id); err != nil {
		return s.commandError(err, id)
	}
	limit := s.opt.LogMaxBytes
	if req.ContentLength > limit {
		return errorf(http.StatusRequestEntityTooLarge, "body: %d bytes is over the limit of %d", req.ContentLength, limit)
	}
	rc := http.NewResponseController(c.Response())
	deadline := time.Now().Add(logUploadTimeout)
	for _, set := range []func(time.Time) error{rc.SetReadDeadline, rc.SetWriteDeadline} {
		if err := set(deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
			s.log.WarnContext(ctx, "extend log upload deadline", "err", err)
		}
	}

	if err := os.MkdirAll(s.opt.LogDir, 0o750); err != nil {
		return fmt.Errorf("create log dir: %w", err)
	}
	tmp, err := os.CreateTemp(s.opt.LogDir, model.LogTempPrefix+"*")
	if err != nil {
		return fmt.Errorf("create log file: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			if err := tmp.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
				s.log.WarnContext(ctx, "close abandoned log upload", "err", err)
			}
			if err := os.Remove(tmp.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.WarnContext(ctx, "remove abandoned log upload", "file", tmp.Name(), "err", err)
			}
		}
	}()
	// A cancelled request or a shutdown of the server cuts the body read at once by moving
	// its deadline to now; the read then fails and the deferred func removes the file.
	cut := func() {
		if err := rc.SetReadDeadline(time.Now()); err != nil && !errors.Is(err, http.ErrNotSupported) {
			s.log.WarnContext(ctx, "cut log upload", "err", err)
		}
	}
	defer context.AfterFunc(ctx, cut)()
	down := shutdownOf(ctx)
	if down != nil {
		defer context.AfterFunc(down, cut)()
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, sum), io.LimitReader(req.Body, limit+1))
	if err != nil {
		if down != nil && down.Err() != nil {
			return errorf(http.StatusServiceUnavailable, "server shutting down: upload the log again")
		}
		return &Error{Status: http.StatusBadRequest, Msg: "body: could not be read", Err: fmt.Errorf("read log upload: %w", err)}
	}
	if n > limit {
		return errorf(http.StatusRequestEntityTooLarge, "body: over the limit of %d bytes", limit)
	}
	if n == 0 {
		// Counted, not taken from Content-Length, so a streamed empty body is refused too.
		return errorf(http.StatusBadRequest, "body: empty; the log file must be the request body")
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync log file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close log file: %w", err)
	}
	name, err := logFileName(time.Now())
	if err != nil {
		return err
	}
	final := filepath.Join(s.opt.LogDir, name)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("store log file: %w", err)
	}
	lg := model.Log{Path: name, Size: n, SHA256: hex.EncodeToString(sum.Sum(nil))}
	if err := s.opt.Commands.Complete(ctx, sn, id, &lg); err != nil {
		if rerr := os.Remove(final); rerr != nil {
			s.log.WarnContext(ctx, "remove log file of a failed upload", "file", final, "err", rerr)
		}
		return s.commandError(err, id)
	}
	keep = true
	return c.JSON(http.StatusOK, errorBody{Code: 0, Msg: "ok"})
}

// commandError maps a command lookup's error: not open is the client's 409, anything
// else a database outage.
func (s *Server) commandError(err error, id uint64) error {
	if errors.Is(err, command.ErrNotOpen) {
		return errorf(http.StatusConflict, "cmdId: %d is not an open command of this device", id)
	}
	return dbError("check command", err)
}

// logFileName is a fresh name chosen by the server: the time and 16 random hex digits.
func logFileName(now time.Time) (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random log name: %w", err)
	}
	return now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b) + ".log", nil
}

// listLogs answers GET /api/v1/logs?sn=&limit=&cursor=, newest first.
func (s *Server) listLogs(c echo.Context) error {
	_, page, q, err := s.idListing(c, "log", "sn")
	if err != nil {
		return err
	}
	var rows []model.Log
	if err := q.Find(&rows).Error; err != nil {
		return dbError("list logs", err)
	}
	return c.JSON(http.StatusOK, pageOf(rows, page, "log", func(r *model.Log) uint64 { return r.ID }))
}

// downloadLog answers GET /api/v1/logs/{id} with the file's bytes as an attachment.
func (s *Server) downloadLog(c echo.Context) error {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		return errorf(http.StatusBadRequest, "id: %q is not a log id", model.Clip(c.Param("id")))
	}
	var lg model.Log
	err = s.opt.DB.WithContext(c.Request().Context()).Take(&lg, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return errorf(http.StatusNotFound, "no log %d", id)
	}
	if err != nil {
		return dbError("find log", err)
	}
	// Path was chosen by the server; Base keeps it inside the log directory regardless.
	f, err := os.Open(filepath.Join(s.opt.LogDir, filepath.Base(lg.Path)))
	if errors.Is(err, os.ErrNotExist) {
		return errorf(http.StatusGone, "log %d: the file is gone", id)
	}
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			s.log.WarnContext(c.Request().Context(), "close log file", "err", err)
		}
	}()
	h := c.Response().Header()
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("%s-%d.log", lg.SN, lg.ID)))
	h.Set(echo.HeaderContentType, "application/octet-stream")
	h.Set("X-Content-SHA256", lg.SHA256)
	http.ServeContent(c.Response(), c.Request(), "", lg.CreatedAt, f)
	return nil
}
