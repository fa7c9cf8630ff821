// Package smtp sends the notifications module's e-mail to an SMTP server:
// smtp://[user:pass@]host[:port] (port 25; STARTTLS whenever the server
// offers it, and required before credentials are sent to a host that is
// not loopback) or smtps://[user:pass@]host[:port] (implicit TLS, port 465).
package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/notifications"
)

// Options tune a Sender beyond its URL.
type Options struct {
	// TLS is the client TLS configuration (nil: the system roots, the
	// URL's host as server name); tests pass their own roots.
	TLS *tls.Config
	// LocalName is sent in EHLO (default "localhost").
	LocalName string
	// Timeout bounds a whole send when the context has no deadline
	// (default 60 s).
	Timeout time.Duration
	// Now stamps the Date header (default time.Now).
	Now func() time.Time
}

// Sender delivers mail to one SMTP server.
type Sender struct {
	addr     string
	host     string
	implicit bool
	user     string
	pass     string
	opt      Options
}

// New parses rawURL. Its error names what is wrong with the URL and never
// contains the password.
func New(rawURL string, o Options) (*Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("smtp.url must be smtp://[user:pass@]host[:port] or smtps://[user:pass@]host[:port]")
	}
	s := &Sender{host: u.Hostname(), implicit: u.Scheme == "smtps", opt: o}
	port := u.Port()
	if port == "" {
		port = map[bool]string{true: "465", false: "25"}[s.implicit]
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	if s.opt.LocalName == "" {
		s.opt.LocalName = "localhost"
	}
	if s.opt.Timeout <= 0 {
		s.opt.Timeout = time.Minute
	}
	if s.opt.Now == nil {
		s.opt.Now = time.Now
	}
	return s, nil
}

// Send transmits m. It returns nil once the server accepted the message
// (250 after the data); an answer in the 5xx range is wrapped with
// notifications.Permanent; anything else (refused connection, 4xx,
// timeout, a connection lost before the server confirmed) may be retried.
func (s *Sender) Send(ctx context.Context, m notifications.Mail) error {
	msg, err := Build(m, s.opt.Now())
	if err != nil {
		return notifications.Permanent(err)
	}
	envelope, err := addressOnly(m.From)
	if err != nil {
		return notifications.Permanent(fmt.Errorf("sender %q: %w", m.From, err))
	}
	c, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", s.addr, err)
	}
	defer c.Close()
	if err := transmit(c, envelope, m.To, msg); err != nil {
		return classify(fmt.Errorf("smtp %s: %w", s.addr, err))
	}
	_ = c.Quit() // the message is accepted; a failed QUIT changes nothing
	return nil
}

// connect dials, upgrades to TLS as the URL asks and authenticates.
func (s *Sender) connect(ctx context.Context) (*smtp.Client, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(s.opt.Timeout)
	}
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(deadline)
	if s.implicit {
		conn = tls.Client(conn, s.tlsConfig())
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := s.hello(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (s *Sender) hello(c *smtp.Client) error {
	if err := c.Hello(s.opt.LocalName); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !s.implicit {
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if s.user == "" {
		return nil
	}
	// PlainAuth refuses to send the password without TLS unless the host
	// is loopback.
	if err := c.Auth(smtp.PlainAuth("", s.user, s.pass, s.host)); err != nil {
		return classify(fmt.Errorf("authenticating as %s: %w", s.user, err))
	}
	return nil
}

func (s *Sender) tlsConfig() *tls.Config {
	if s.opt.TLS != nil {
		c := s.opt.TLS.Clone()
		if c.ServerName == "" {
			c.ServerName = s.host
		}
		return c
	}
	return &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
}

func transmit(c *smtp.Client, from, to string, msg []byte) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return w.Close() // reads the server's answer to the data
}

// classify makes a 5xx answer permanent, and a refused mailbox (5.1.x:
// no such user, bad address) a hard bounce that suppresses the address.
func classify(err error) error {
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code < 500 {
		return err
	}
	if (te.Code == 550 || te.Code == 551 || te.Code == 553) && strings.HasPrefix(te.Msg, "5.1.") {
		return notifications.HardBounce(err)
	}
	return notifications.Permanent(err)
}
