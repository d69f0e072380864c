package scheduler

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// holdProxy forwards TCP connections to a Redis, except that it holds the first write
// from a client that contains its marker, and its connection, until Release. (A copy of
// the one in internal/redispipe's tests.)
type holdProxy struct {
	t       *testing.T
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

func newHoldProxy(t *testing.T, target, marker string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &holdProxy{t: t, ln: ln, target: target, marker: []byte(marker), held: make(chan struct{}), release: make(chan struct{})}
	h.armed.Store(true)
	h.wg.Go(h.accept)
	t.Cleanup(h.close)
	return h
}

func (h *holdProxy) Addr() string { return h.ln.Addr().String() }

// Held is closed when the marked write has arrived and is being held.
func (h *holdProxy) Held() <-chan struct{} { return h.held }

// Release lets the held write through.
func (h *holdProxy) Release() { h.relOnce.Do(func() { close(h.release) }) }

func (h *holdProxy) accept() {
	for {
		client, err := h.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.Dial("tcp", h.target)
		if err != nil {
			h.t.Errorf("proxy dial %s: %v", h.target, err)
			client.Close()
			continue
		}
		h.mu.Lock()
		h.conns = append(h.conns, client, server)
		h.mu.Unlock()
		h.wg.Go(func() {
			_, _ = io.Copy(client, server)
			client.Close()
		})
		h.wg.Go(func() {
			defer server.Close()
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

func (h *holdProxy) close() {
	h.Release()
	if err := h.ln.Close(); err != nil {
		h.t.Error(err)
	}
	h.mu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}
