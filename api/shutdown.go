package api

import (
	"context"
	"net"
	"net/http"
)

// shutdownKey is the context key under which a request finds the context that its
// http.Server's Shutdown cancels.
type shutdownKey struct{}

// CutUploadsOnShutdown makes srv's Shutdown cut the log uploads in flight instead of
// waiting up to its deadline for them: an upload of tens of megabytes over a slow link
// could otherwise hold a shutdown for the whole MONITOR_SHUTDOWN_TIMEOUT. A cut upload
// is answered 503, its temporary file removed and its command left open, so the terminal
// uploads again. Status reports and every other request still drain as before.
func CutUploadsOnShutdown(srv *http.Server) {
	down, cancel := context.WithCancel(context.Background())
	base := srv.BaseContext
	srv.BaseContext = func(ln net.Listener) context.Context {
		ctx := context.Background()
		if base != nil {
			ctx = base(ln)
		}
		return context.WithValue(ctx, shutdownKey{}, down)
	}
	srv.RegisterOnShutdown(cancel)
}

// shutdownOf returns the context that the request's server's Shutdown cancels, or nil
// when the server was not set up with CutUploadsOnShutdown.
func shutdownOf(ctx context.Context) context.Context {
	down, _ := ctx.Value(shutdownKey{}).(context.Context)
	return down
}
