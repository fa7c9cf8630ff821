// Package smtptest runs a real SMTP server (emersion/go-smtp) in the test
// process and takes the messages it receives apart. Only tests import it.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From, To string
	TLS      bool
	User     string // who authenticated, if anyone
	Raw      []byte
}

// Server is a running SMTP server.
type Server struct {
	Addr string

	mu      sync.Mutex
	msgs    []Message
	answers []error
	arrived chan struct{}
}

// Options choose how the server talks.
type Options struct {
	TLS      *tls.Config // offered with STARTTLS, or from the first byte when Implicit
	Implicit bool
	// User and Password are the only credentials AUTH PLAIN accepts.
	User, Password string
}

// Start runs a server until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: l.Addr().String(), arrived: make(chan struct{}, 1000)}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &session{s: s, c: c, o: o}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if o.Implicit {
		l = tls.NewListener(l, o.TLS)
	} else {
		srv.TLSConfig = o.TLS
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Answer makes the next DATA commands fail with errs, in order (nil
// accepts); e.g. &gosmtp.SMTPError{Code: 451, …}.
func (s *Server) Answer(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = append(s.answers, errs...)
}

// Messages returns what the server accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait waits until n messages arrived (or fails the test after timeout).
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.arrived:
		case <-deadline:
			t.Fatalf("%d messages arrived within %s, want %d", len(s.Messages()), timeout, n)
		}
	}
}

type session struct {
	s    *Server
	c    *gosmtp.Conn
	o    Options
	cur  Message
	user string
}

func (x *session) AuthMechanisms() []string {
	if x.o.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != x.o.User || pass != x.o.Password {
			return errors.New("bad credentials")
		}
		x.user = user
		return nil
	}), nil
}

func (x *session) Reset()        {}
func (x *session) Logout() error { return nil }

func (x *session) Mail(from string, _ *gosmtp.MailOptions) error {
	x.cur = Message{From: from}
	return nil
}

func (x *session) Rcpt(to string, _ *gosmtp.RcptOptions) error { x.cur.To = to; return nil }

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if len(x.s.answers) > 0 {
		a := x.s.answers[0]
		x.s.answers = x.s.answers[1:]
		if a != nil {
			return a
		}
	}
	_, x.cur.TLS = x.c.TLSConnectionState()
	x.cur.User, x.cur.Raw = x.user, b
	x.s.msgs = append(x.s.msgs, x.cur)
	x.s.arrived <- struct{}{}
	return nil
}

// Parsed is a message taken apart.
type Parsed struct {
	Header      mail.Header
	Subject     string // decoded
	Text, HTML  string // text with LF line ends
	Attachments map[string][]byte
}

// Parse takes a raw message apart (multipart/mixed and /alternative).
func Parse(t testing.TB, raw []byte) Parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	p := Parsed{Header: m.Header, Attachments: map[string][]byte{}}
	p.Subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	walk(t, m.Header.Get("Content-Type"), m.Body, &p)
	return p
}

func walk(t testing.TB, contentType string, body io.Reader, p *Parsed) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", mt, err)
		}
		ct := part.Header.Get("Content-Type")
		switch {
		case strings.HasPrefix(ct, "multipart/"):
			walk(t, ct, part, p)
		case part.FileName() != "":
			b, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, part))
			p.Attachments[part.FileName()] = b
		case strings.HasPrefix(ct, "text/html"):
			b, _ := io.ReadAll(quotedprintable.NewReader(part))
			p.HTML = string(b)
		default:
			b, _ := io.ReadAll(quotedprintable.NewReader(part))
			p.Text = strings.ReplaceAll(string(b), "\r\n", "\n") // mail lines end in CRLF
		}
	}
}
