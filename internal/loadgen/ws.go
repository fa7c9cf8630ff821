package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WSConn is the load generator's WebSocket client (RFC 6455): a lean
// hand-written one, so tens of thousands of connections cost the machine
// it shares with the server little. Per connection it holds a socket, a
// 2 KiB read buffer and, while Serve runs, one goroutine; it offers no
// extension (no permessage-deflate). A library client (coder/websocket)
// costs several times that per connection: see docs/realtime.md, "Load
// generator".
//
// One goroutine reads (ReadMessage or Serve); any goroutine writes.
type WSConn struct {
	c    net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex
	wbuf []byte
	msg  []byte // the message being read (fragments joined)
}

// CloseError is a close frame the server sent: its code and reason.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("websocket closed by the server: %d %s", e.Code, e.Reason)
}

// HandshakeError is a refused upgrade: the HTTP status and the start of
// the body (a problem+json document from Abacus).
type HandshakeError struct {
	Status int
	Body   string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket upgrade refused: HTTP %d %s", e.Status, e.Body)
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocket opcodes.
const (
	opContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// DialWS opens a WebSocket to rawURL (ws://, or http:// which means the
// same) through d and completes the opening handshake.
func DialWS(ctx context.Context, d *net.Dialer, rawURL string) (*WSConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("websocket url %q: %w", rawURL, err)
	}
	if u.Scheme != "ws" && u.Scheme != "http" {
		return nil, fmt.Errorf("websocket url %q: only ws:// (or http://) is spoken", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr += ":80"
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	w, err := handshake(nc, u)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return w, nil
}

func handshake(nc net.Conn, u *url.URL) (*WSConn, error) {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\nUser-Agent: abacus-bench\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, fmt.Errorf("sending the websocket upgrade: %w", err)
	}
	br := bufio.NewReaderSize(nc, 2<<10)
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("reading the upgrade answer: %w", err)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return nil, fmt.Errorf("bad upgrade answer %q", strings.TrimSpace(line))
	}
	status, _ := strconv.Atoi(f[1])
	var accept string
	length := -1
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("reading the upgrade answer's headers: %w", err)
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		name, v, _ := strings.Cut(h, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "sec-websocket-accept":
			accept = strings.TrimSpace(v)
		case "content-length":
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if status != 101 {
		body := make([]byte, min(max(length, 0), 512))
		n, _ := io.ReadFull(br, body)
		return nil, &HandshakeError{Status: status, Body: strings.TrimSpace(string(body[:n]))}
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if accept != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("upgrade answer's Sec-WebSocket-Accept %q does not match the key", accept)
	}
	return &WSConn{c: nc, br: br}, nil
}

// WriteText sends p as one masked text frame.
func (w *WSConn) WriteText(p []byte) error { return w.writeFrame(OpText, p) }

func (w *WSConn) writeFrame(op byte, p []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	b := append(w.wbuf[:0], 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b = append(b, mask[:]...)
	off := len(b)
	b = append(b, p...)
	for i := range p {
		b[off+i] ^= mask[i&3]
	}
	w.wbuf = b
	_, err := w.c.Write(b)
	return err
}

// ReadMessage returns the next data message (text or binary, fragments
// joined). It answers pings itself; a close frame is answered and
// returned as a *CloseError. The payload is valid until the next call.
func (w *WSConn) ReadMessage() (op byte, payload []byte, err error) {
	w.msg = w.msg[:0]
	var msgOp byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return 0, nil, err
		}
		fin, fop := h[0]&0x80 != 0, h[0]&0x0F
		if h[1]&0x80 != 0 {
			return 0, nil, errors.New("websocket: the server masked a frame (RFC 6455 §5.1)")
		}
		n := uint64(h[1] & 0x7F)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(w.br, e[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(w.br, e[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(e[:])
		}
		if n > 16<<20 {
			return 0, nil, fmt.Errorf("websocket: a %d-byte frame is beyond the generator's 16 MiB limit", n)
		}
		if fop >= opClose { // control frame: answer between fragments
			var ctl [125]byte
			if n > 125 {
				return 0, nil, errors.New("websocket: a control frame longer than 125 bytes")
			}
			if _, err := io.ReadFull(w.br, ctl[:n]); err != nil {
				return 0, nil, err
			}
			switch fop {
			case opPing:
				if err := w.writeFrame(opPong, ctl[:n]); err != nil {
					return 0, nil, err
				}
			case opClose:
				ce := &CloseError{Code: 1005}
				if n >= 2 {
					ce.Code = int(binary.BigEndian.Uint16(ctl[:2]))
					ce.Reason = string(ctl[2:n])
				}
				_ = w.writeFrame(opClose, ctl[:min(n, 2)])
				return 0, nil, ce
			}
			continue
		}
		if fop != opContinuation {
			msgOp = fop
		}
		off := len(w.msg)
		w.msg = append(w.msg, make([]byte, n)...)
		if _, err := io.ReadFull(w.br, w.msg[off:]); err != nil {
			return 0, nil, err
		}
		if fin {
			return msgOp, w.msg, nil
		}
	}
}

// Close sends a normal close frame (1000) and closes the socket without
// waiting for the server's answer.
func (w *WSConn) Close() error {
	_ = w.c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = w.writeFrame(opClose, []byte{0x03, 0xE8})
	return w.c.Close()
}

// Drop closes the socket with no close frame, as a crashed client would.
func (w *WSConn) Drop() error { return w.c.Close() }
