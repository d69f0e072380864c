package api

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"monitor/model"
)

// TestShutdownCutsALogUploadInFlight is issue 8 item 17: a slow log upload held the
// HTTP server's Shutdown for its whole deadline, and the process then exited with the
// partial temporary file left in the log directory. With CutUploadsOnShutdown the
// Shutdown cuts it at once: the terminal gets a 503, the file is removed and the
// command stays open for the next upload.
func TestShutdownCutsALogUploadInFlight(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.LogMaxBytes = 1 << 20 })
	h.seedABC()
	cmd := h.createCommand("A", http.StatusCreated)

	srv := h.srv.HTTPServer("")
	CutUploadsOnShutdown(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	// Half of a 64 KiB body, then nothing more: a terminal on a slow link.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /open/logUpload?sn=A&cmdId=%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s",
		cmd.ID, 64<<10, strings.Repeat("x", 32<<10))
	waitFiles(t, h.srv.opt.LogDir, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an upload in flight: %v after %v", err, time.Since(start))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown waited %v for the upload", d)
	}
	waitFiles(t, h.srv.opt.LogDir, 0)
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the cut upload: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("cut upload answered %d, want 503", resp.StatusCode)
	}
	var c model.Command
	if err := h.db.Take(&c, cmd.ID).Error; err != nil {
		t.Fatal(err)
	}
	if c.State != model.CommandPending || c.DoneAt != nil {
		t.Errorf("after a cut upload the command is %s, want still pending", c.State)
	}
}

// TestCancelledLogUploadRemovesItsFile checks the other way an upload is cut: its
// request's context ends (the client went away, or the server's base context ended).
func TestCancelledLogUploadRemovesItsFile(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.LogMaxBytes = 1 << 20 })
	h.seedABC()
	cmd := h.createCommand("A", http.StatusCreated)
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := h.srv.HTTPServer("")
	srv.BaseContext = func(net.Listener) context.Context { return base }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /open/logUpload?sn=A&cmdId=%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s",
		cmd.ID, 64<<10, strings.Repeat("x", 32<<10))
	waitFiles(t, h.srv.opt.LogDir, 1)
	cancel()
	waitFiles(t, h.srv.opt.LogDir, 0)
}

// waitFiles waits up to 5 s until dir holds n files.
func waitFiles(t *testing.T, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		files, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if len(files) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d files, want %d", dir, len(files), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
