package simulate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// poster posts one report body and returns the status and the start of the answer.
// Each sender goroutine has its own.
type poster interface {
	post(ctx context.Context, body []byte, head []byte) (status int, n int, err error)
	close() error
}

// stdPoster goes through a shared net/http client.
type stdPoster struct {
	client    *http.Client
	url       string
	deviceKey string
}

func (p *stdPoster) post(ctx context.Context, body, head []byte) (int, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if p.deviceKey != "" {
		req.Header.Set("X-Device-Key", p.deviceKey)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	return readAnswer(resp, head)
}

func (p *stdPoster) close() error {
	p.client.CloseIdleConnections()
	return nil
}

// readAnswer reads the start of resp's body into head and drains the rest, so the
// connection can be reused.
func readAnswer(resp *http.Response, head []byte) (int, int, error) {
	n, rerr := io.ReadFull(resp.Body, head)
	if errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, io.EOF) {
		rerr = nil
	}
	_, derr := io.Copy(io.Discard, resp.Body)
	cerr := resp.Body.Close()
	if err := errors.Join(rerr, derr, cerr); err != nil {
		return 0, 0, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, n, nil
}

// newStdClient returns an HTTP client that keeps exactly conns connections to the server alive.
func newStdClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// rawPoster speaks HTTP/1.1 with keep-alive on one connection of its own, writing each
// request with one write and parsing the answer with net/http. It spares the generator
// net/http's two goroutines and channel hand-offs per connection, which on a machine
// shared with the server under test is CPU taken from the server.
type rawPoster struct {
	addr    string
	header  []byte // request line and headers up to Content-Length's value
	timeout time.Duration
	conn    net.Conn
	br      *bufio.Reader
	wbuf    []byte
}

func newRawPoster(target *url.URL, path, deviceKey string, timeout time.Duration) *rawPoster {
	h := "POST " + path + " HTTP/1.1\r\nHost: " + target.Host + "\r\nContent-Type: application/json\r\n"
	if deviceKey != "" {
		h += "X-Device-Key: " + deviceKey + "\r\n"
	}
	h += "Content-Length: "
	addr := target.Host
	if target.Port() == "" {
		addr = net.JoinHostPort(target.Hostname(), "80")
	}
	return &rawPoster{addr: addr, header: []byte(h), timeout: timeout}
}

var postRequest = &http.Request{Method: http.MethodPost}

func (p *rawPoster) post(ctx context.Context, body, head []byte) (int, int, error) {
	if p.conn == nil {
		d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return 0, 0, fmt.Errorf("dial: %w", err)
		}
		p.conn = conn
		p.br = bufio.NewReaderSize(conn, 4096)
	}
	deadline := time.Now().Add(p.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := p.conn.SetDeadline(deadline); err != nil {
		return 0, 0, p.fail(fmt.Errorf("set deadline: %w", err))
	}
	p.wbuf = append(p.wbuf[:0], p.header...)
	p.wbuf = strconv.AppendInt(p.wbuf, int64(len(body)), 10)
	p.wbuf = append(p.wbuf, "\r\n\r\n"...)
	p.wbuf = append(p.wbuf, body...)
	if _, err := p.conn.Write(p.wbuf); err != nil {
		return 0, 0, p.fail(fmt.Errorf("write request: %w", err))
	}
	resp, err := http.ReadResponse(p.br, postRequest)
	if err != nil {
		return 0, 0, p.fail(fmt.Errorf("read response: %w", err))
	}
	status, n, err := readAnswer(resp, head)
	if err != nil {
		return 0, 0, p.fail(err)
	}
	if resp.Close {
		if err := p.close(); err != nil {
			return 0, 0, err
		}
	}
	return status, n, nil
}

// fail drops the connection after err, so the next post dials afresh.
func (p *rawPoster) fail(err error) error {
	return errors.Join(err, p.close())
}

func (p *rawPoster) close() error {
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn, p.br = nil, nil
	if err != nil {
		return fmt.Errorf("close connection: %w", err)
	}
	return nil
}
