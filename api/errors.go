package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Error is an error with the HTTP status and message the client sees. Handlers return
// it; errorHandler is the one place that turns any error into a response.
type Error struct {
	Status int
	Msg    string
	// Err is the cause, logged but never shown to the client.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Msg, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// errorf returns an Error with status and a formatted message for the client.
func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// badRequest turns a parameter error, whose text names the parameter, into a 400.
func badRequest(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: err.Error()}
}

// dbError is a database failure: a 503 that hides the cause from the client and logs it.
func dbError(what string, err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Msg: "database unavailable: retry later", Err: fmt.Errorf("%s: %w", what, err)}
}

// errorBody is the one JSON shape of every error: a non-zero code and a message.
type errorBody struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

// errorHandler maps err to a status and the JSON error body. Errors that are not an
// *Error or an echo.HTTPError are the server's fault: they are logged and answered with
// a 500 that reveals nothing of the cause.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var (
			apiErr  *Error
			echoErr *echo.HTTPError
			body    errorBody
		)
		switch {
		case errors.As(err, &apiErr):
			body = errorBody{Code: apiErr.Status, Msg: apiErr.Msg}
			if apiErr.Status >= 500 {
				log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method, "path", c.Path(),
					"status", apiErr.Status, "err", err)
			}
		case errors.As(err, &echoErr):
			body = errorBody{Code: echoErr.Code, Msg: http.StatusText(echoErr.Code)}
			if m, ok := echoErr.Message.(string); ok && echoErr.Code < 500 {
				body.Msg = m
			}
		default:
			log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
			body = errorBody{Code: http.StatusInternalServerError, Msg: "internal error"}
		}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(body.Code)
		} else {
			err = c.JSON(body.Code, body)
		}
		if err != nil {
			log.DebugContext(c.Request().Context(), "write error response", "err", err)
		}
	}
}
