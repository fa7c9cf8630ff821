package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
)

// RawHTTP is a minimal HTTP/1.1 keep-alive client for POST /api/v1/events.
// The load generator shares the machine's cores with the server it
// measures; net/http's client spends several times more CPU per request
// than writing the request bytes by hand, which would cap single-event
// figures at the generator, not the server. Both the server and the bare
// net/http baseline are driven with it, so their ratio stays fair.
type RawHTTP struct {
	addr    string
	head    [2][]byte // request head up to Content-Length's value: [batch, single]
	timeout time.Duration
	pool    chan *rawConn
}

type rawConn struct {
	c  net.Conn
	br *bufio.Reader
	wb []byte
}

// NewRawHTTP returns a sender to baseURL's /api/v1/events with apiKey,
// keeping up to conns connections open; timeout bounds one request.
func NewRawHTTP(baseURL, apiKey string, conns int, timeout time.Duration) (*RawHTTP, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("url %q: the raw client speaks plain http://host:port only", baseURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr += ":80"
	}
	r := &RawHTTP{addr: addr, timeout: timeout, pool: make(chan *rawConn, max(conns, 1))}
	for i, ct := range []string{client.ContentTypeBatch, client.ContentTypeEvent} {
		r.head[i] = fmt.Appendf(nil, "POST /api/v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: ", u.Host, apiKey, ct)
	}
	return r, nil
}

// Sender returns the SendFunc.
func (r *RawHTTP) Sender() SendFunc { return r.send }

// Close closes the idle connections.
func (r *RawHTTP) Close() {
	for {
		select {
		case c := <-r.pool:
			c.c.Close()
		default:
			return
		}
	}
}

func (r *RawHTTP) send(ctx context.Context, single bool, body []byte) error {
	var c *rawConn
	select {
	case c = <-r.pool:
	default:
		d := net.Dialer{Timeout: 5 * time.Second}
		nc, err := d.DialContext(ctx, "tcp", r.addr)
		if err != nil {
			return fmt.Errorf("connecting to %s: %w", r.addr, err)
		}
		c = &rawConn{c: nc, br: bufio.NewReaderSize(nc, 16<<10)}
	}
	keep, err := c.roundTrip(r, single, body)
	if !keep {
		c.c.Close()
	} else {
		select {
		case r.pool <- c:
		default:
			c.c.Close()
		}
	}
	return err
}

// roundTrip sends one request and reads the answer. keep says whether the
// connection can carry another request.
func (c *rawConn) roundTrip(r *RawHTTP, single bool, body []byte) (keep bool, err error) {
	h := r.head[0]
	if single {
		h = r.head[1]
	}
	if r.timeout > 0 {
		_ = c.c.SetDeadline(time.Now().Add(r.timeout))
	}
	c.wb = append(c.wb[:0], h...)
	c.wb = strconv.AppendInt(c.wb, int64(len(body)), 10)
	c.wb = append(c.wb, "\r\n\r\n"...)
	if len(body) < 64<<10 {
		c.wb = append(c.wb, body...)
		_, err = c.c.Write(c.wb)
	} else {
		_, err = (&net.Buffers{c.wb, body}).WriteTo(c.c)
	}
	if err != nil {
		return false, fmt.Errorf("sending to %s: %w", r.addr, err)
	}
	return c.readResponse(r.addr, false)
}

// readResponse reads one answer. A 2xx body is kept only when keepBody;
// an error's body always is, for the message.
func (c *rawConn) readResponse(addr string, keepBody bool) (keep bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return false, fmt.Errorf("reading the answer from %s: %w", addr, err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return false, fmt.Errorf("malformed status line %q from %s", line, addr)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return false, fmt.Errorf("malformed status line %q from %s", line, addr)
	}
	keep = true
	length, chunked := int64(0), false
	var retryAfter time.Duration
	for {
		l, err := c.br.ReadSlice('\n')
		if err != nil {
			return false, fmt.Errorf("reading headers from %s: %w", addr, err)
		}
		l = bytes.TrimRight(l, "\r\n")
		if len(l) == 0 {
			break
		}
		k, v, _ := bytes.Cut(l, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case asciiEq(k, "content-length"):
			length, _ = strconv.ParseInt(string(v), 10, 64)
		case asciiEq(k, "transfer-encoding"):
			chunked = asciiEq(v, "chunked")
		case asciiEq(k, "connection"):
			keep = !asciiEq(v, "close")
		case asciiEq(k, "retry-after"):
			if n, err := strconv.Atoi(string(v)); err == nil {
				retryAfter = time.Duration(n) * time.Second
			}
		}
	}
	var respBody []byte
	ok := status >= 200 && status < 300
	switch {
	case status == 204 || status == 304 || status < 200:
	case ok && !keepBody && !chunked:
		if _, err := c.br.Discard(int(length)); err != nil {
			return false, fmt.Errorf("reading the body from %s: %w", addr, err)
		}
	case chunked:
		if respBody, err = readChunked(c.br); err != nil {
			return false, fmt.Errorf("reading the body from %s: %w", addr, err)
		}
	case length > 0:
		respBody = make([]byte, length)
		if _, err := io.ReadFull(c.br, respBody); err != nil {
			return false, fmt.Errorf("reading the body from %s: %w", addr, err)
		}
	}
	if ok {
		return keep, nil
	}
	return keep, &client.Problem{Status: status, Body: string(bytes.TrimSpace(respBody)), RetryAfter: retryAfter}
}

func readChunked(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		l, _, _ = bytes.Cut(bytes.TrimRight(l, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(l), 16, 64)
		if err != nil || n < 0 {
			return nil, errors.New("malformed chunk size")
		}
		if n == 0 {
			for { // trailers up to the empty line
				t, err := br.ReadSlice('\n')
				if err != nil {
					return nil, err
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return out, nil
				}
			}
		}
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(br, out[start:]); err != nil {
			return nil, err
		}
		if _, err := br.Discard(2); err != nil {
			return nil, err
		}
	}
}

func asciiEq(b []byte, s string) bool {
	return len(b) == len(s) && bytes.EqualFold(b, []byte(s))
}
