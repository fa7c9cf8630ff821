package realtime

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// Buffers of a connection's socket. coder/websocket reads and writes
// through the bufio pair the HTTP hijack hands it: net/http's are 4 KiB
// each, kept for the connection's life, the largest part of an idle
// connection's memory. Frames of this protocol are small, so a small
// reader costs an extra read only for a large frame, and the writer's
// buffer hardly matters: while the connection's writer drains its queue
// the socket is corked and collects every frame into one pooled buffer
// (one write system call per batch instead of one per frame).
const (
	socketReadBuffer  = 512
	socketWriteBuffer = 256
	// maxCorked bounds what a corked socket collects before it writes
	// anyway.
	maxCorked = 64 << 10
)

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// socket is the TCP connection under a WebSocket. Writes while corked
// are collected and written at uncork; every write to the network has a
// deadline of timeout, so a client that stops reading cannot hold the
// connection's writer (nor a corked batch) longer than that.
type socket struct {
	net.Conn
	timeout time.Duration
	pending []byte // read from the network before the hijack

	mu     sync.Mutex
	corked bool
	out    *[]byte // collected while corked; from corkPool
	err    error   // the first write error: every later write fails
}

// hijacker hands coder/websocket the socket instead of net/http's
// connection and buffers when it upgrades.
type hijacker struct {
	http.ResponseWriter
	timeout time.Duration
	sock    *socket
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	s := &socket{Conn: nc, timeout: h.timeout}
	if n := brw.Reader.Buffered(); n > 0 {
		// A client may send frames right after the handshake.
		b, _ := brw.Reader.Peek(n)
		s.pending = append([]byte(nil), b...)
	}
	h.sock = s
	return s, bufio.NewReadWriter(bufio.NewReaderSize(s, socketReadBuffer), bufio.NewWriterSize(s, socketWriteBuffer)), nil
}

func (s *socket) Read(p []byte) (int, error) {
	if len(s.pending) > 0 { // only the reader reads: no lock
		n := copy(p, s.pending)
		if s.pending = s.pending[n:]; len(s.pending) == 0 {
			s.pending = nil
		}
		return n, nil
	}
	return s.Conn.Read(p)
}

func (s *socket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	if s.corked {
		if s.out == nil {
			s.out = corkPool.Get().(*[]byte)
		}
		// Copied: p is the bufio writer's buffer, reused at once.
		*s.out = append(*s.out, p...)
		if len(*s.out) >= maxCorked {
			if err := s.flushLocked(); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	if err := s.flushLocked(); err != nil {
		return 0, err
	}
	return s.writeLocked(p)
}

// cork collects writes until uncork.
func (s *socket) cork() {
	s.mu.Lock()
	s.corked = true
	s.mu.Unlock()
}

// uncork writes what was collected, in one write.
func (s *socket) uncork() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corked = false
	return s.flushLocked()
}

func (s *socket) flushLocked() error {
	if s.out == nil {
		return s.err
	}
	b := s.out
	s.out = nil
	var err error
	if len(*b) > 0 && s.err == nil {
		_, err = s.writeLocked(*b)
	}
	if cap(*b) <= maxCorked {
		*b = (*b)[:0]
		corkPool.Put(b)
	}
	if err != nil {
		return err
	}
	return s.err
}

func (s *socket) writeLocked(p []byte) (int, error) {
	if err := s.Conn.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		s.err = err
		return 0, err
	}
	n, err := s.Conn.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}
