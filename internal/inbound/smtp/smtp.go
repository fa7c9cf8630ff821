// Package smtp is the inbound-smtp role's receiver: an SMTP server
// (emersion/go-smtp) that accepts mail for the tenants' inbound addresses
// and hands each message to inbound.Service.ReceiveMail. It answers as a
// receiving MTA should:
//
//	RCPT to an address no tenant has          550 5.1.1 (refused before DATA)
//	DATA above inbound.max_message_bytes      552 5.3.4
//	message stored, ≥ 1 document read         250
//	message stored, no document in it         554 5.6.0 with the reason
//	not stored (database or object store away) 451 4.3.0: the sender retries
//
// 250 is sent only after the raw message is durable in the object store
// and its row committed (see inbound's mailbox.go), so an accepted
// message is never lost; a retried one is recognised by its hash.
package smtp

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/inbound"
)

// Config configures the receiver.
type Config struct {
	Addr            string // host:port to listen on
	Domain          string // announced in the greeting; the inbound addresses' domain
	MaxMessageBytes int64  // largest message (SIZE); default 25 MiB
	MaxRecipients   int    // per message; default 50
	Timeout         time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 25 << 20
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = 50
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.Domain == "" {
		c.Domain = "localhost"
	}
	return c
}

// Receiver is what the server hands messages to (inbound.Service).
type Receiver interface {
	TenantOf(ctx context.Context, rcpt string) (string, error)
	ReceiveMail(ctx context.Context, m inbound.IncomingMail) (inbound.ReceivedMail, error)
}

// Server is a listening SMTP receiver.
type Server struct {
	srv *gosmtp.Server
	l   net.Listener
	log *slog.Logger
}

// Listen binds cfg.Addr (a busy port fails here, before anything runs).
func Listen(cfg Config, recv Receiver, logger *slog.Logger) (*Server, error) {
	cfg = cfg.withDefaults()
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for inbound mail on %s (inbound.smtp_addr): %w", cfg.Addr, err)
	}
	s := &Server{l: l, log: logger}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &session{s: s, recv: recv, remote: c.Conn().RemoteAddr().String()}, nil
	}))
	srv.Domain = cfg.Domain
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout, srv.WriteTimeout = cfg.Timeout, cfg.Timeout
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.l.Addr().String() }

// Run serves until ctx ends, then lets sessions in progress finish for up
// to 10 s.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("inbound mail server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
	}
	<-errc
	return nil
}

// Close stops a server that never ran.
func (s *Server) Close() error { return s.srv.Close() }

type rcpt struct{ tenant, addr string }

type session struct {
	s      *Server
	recv   Receiver
	remote string
	from   string
	to     []rcpt
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

func (x *session) Mail(from string, _ *gosmtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	tenant, err := x.recv.TenantOf(context.Background(), to)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such inbound address"}
	}
	if err != nil {
		x.s.log.Error("looking up an inbound address", "err", err)
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "temporarily unable to accept mail; try again later"}
	}
	for _, r := range x.to {
		if r.tenant == tenant {
			return nil // one copy per tenant
		}
	}
	x.to = append(x.to, rcpt{tenant: tenant, addr: to})
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // ErrDataTooLarge (552) or a broken connection
	}
	ctx := context.Background()
	var rejected []string
	for _, to := range x.to {
		m, err := x.recv.ReceiveMail(ctx, inbound.IncomingMail{Tenant: to.tenant, From: x.from, To: to.addr, Raw: raw})
		switch {
		case err != nil && m.ID != "":
			// Stored; a retry later finishes it (ProcessPending). The sender
			// need not send it again.
			x.s.log.Error("processing a received e-mail", "tenant", to.tenant, "id", m.ID, "err", err)
		case err != nil:
			x.s.log.Error("storing a received e-mail", "tenant", to.tenant, "remote", x.remote, "err", err)
			return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "temporarily unable to store the message; try again later"}
		case m.Status == inbound.MessageRejected:
			rejected = append(rejected, m.Error)
		}
	}
	if len(rejected) == len(x.to) && len(rejected) > 0 {
		return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: oneLine(rejected[0])}
	}
	return nil
}

// oneLine keeps an SMTP reply to one printable line of at most 400 bytes.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return ' '
		}
		return r
	}, s)
	if len(s) > 400 {
		s = s[:397] + "..."
	}
	return s
}
