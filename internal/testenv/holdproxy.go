package testenv

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// HoldProxy forwards TCP connections to a Redis, except that it holds the first write
// from a client that contains its marker, and its connection, until Release: a Redis
// that stalls for exactly one call, for tests of what a hung round trip blocks.
type HoldProxy struct {
	t       testing.TB
	ln      net.Listener
	target  string
	marker  []byte
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
	relOnce sync.Once
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

// NewHoldProxy starts a HoldProxy in front of the Redis at target; the test's cleanup stops it.
func NewHoldProxy(t testing.TB, target, marker string) *HoldProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &HoldProxy{t: t, ln: ln, target: target, marker: []byte(marker), held: make(chan struct{}), release: make(chan struct{})}
	h.armed.Store(true)
	h.wg.Go(h.accept)
	t.Cleanup(h.close)
	return h
}

// Addr is the proxy's address, for the client under test.
func (h *HoldProxy) Addr() string { return h.ln.Addr().String() }

// Held is closed when the marked write has arrived and is being held.
func (h *HoldProxy) Held() <-chan struct{} { return h.held }

// Release lets the held write through.
func (h *HoldProxy) Release() { h.relOnce.Do(func() { close(h.release) }) }

func (h *HoldProxy) accept() {
	for {
		client, err := h.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.Dial("tcp", h.target)
		if err != nil {
			h.t.Errorf("proxy dial %s: %v", h.target, err)
			if err := client.Close(); err != nil {
				h.t.Logf("proxy close client: %v", err)
			}
			continue
		}
		h.mu.Lock()
		h.conns = append(h.conns, client, server)
		h.mu.Unlock()
		h.wg.Go(func() {
			if _, err := io.Copy(client, server); err != nil && !errors.Is(err, net.ErrClosed) {
				h.t.Logf("proxy copy to the client: %v", err)
			}
			if err := client.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				h.t.Logf("proxy close client: %v", err)
			}
		})
		h.wg.Go(func() {
			defer func() {
				if err := server.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
					h.t.Logf("proxy close server: %v", err)
				}
			}()
			buf := make([]byte, 64<<10)
			for {
				n, err := client.Read(buf)
				if n > 0 && bytes.Contains(buf[:n], h.marker) && h.armed.CompareAndSwap(true, false) {
					close(h.held)
					<-h.release
				}
				if n > 0 {
					if _, werr := server.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
}

func (h *HoldProxy) close() {
	h.Release()
	if err := h.ln.Close(); err != nil {
		h.t.Error(err)
	}
	h.mu.Lock()
	for _, c := range h.conns {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			h.t.Logf("proxy close: %v", err)
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
}
