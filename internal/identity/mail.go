package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Mail is one message to send.
type Mail struct {
	From    string
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer delivers mail. Send returns an error when the message was not
// accepted for delivery.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// SMTPMailer sends mail with net/smtp to one server: STARTTLS when the
// server offers it, PLAIN auth when the URL has a user (net/smtp refuses
// PLAIN without TLS except to localhost).
type SMTPMailer struct {
	addr string
	host string
	auth smtp.Auth
}

// NewSMTPMailer parses smtp://[user:pass@]host[:port] (port 25 by default).
// It returns an error naming what is wrong with the URL; the error never
// contains the password.
func NewSMTPMailer(rawURL string) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return nil, errors.New("smtp.url must be smtp://[user:pass@]host[:port]")
	}
	port := u.Port()
	if port == "" {
		port = "25"
	}
	m := &SMTPMailer{addr: net.JoinHostPort(u.Hostname(), port), host: u.Hostname()}
	if u.User != nil {
		pw, _ := u.User.Password()
		m.auth = smtp.PlainAuth("", u.User.Username(), pw, u.Hostname())
	}
	return m, nil
}

// Send delivers m as multipart/alternative (plain text and HTML).
func (s *SMTPMailer) Send(ctx context.Context, m Mail) error {
	msg := buildMessage(m)
	envelope := m.From
	if a, err := mail.ParseAddress(m.From); err == nil {
		envelope = a.Address // "Abacus <x@y>" in the header, x@y in MAIL FROM
	}
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(s.addr, s.auth, envelope, []string{m.To}, msg) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("sending mail via %s: %w", s.addr, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func buildMessage(m Mail) []byte {
	var rb [12]byte
	_, _ = rand.Read(rb[:])
	boundary := "abacus-" + hex.EncodeToString(rb[:])
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\n",
		headerSafe(m.From), headerSafe(m.To), headerSafe(m.Subject), time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=%q\r\n\r\n", boundary)
	for _, part := range []struct{ ct, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary, part.ct)
		w := quotedprintable.NewWriter(&b)
		_, _ = w.Write([]byte(part.body))
		_ = w.Close()
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}

// headerSafe drops line breaks so no value can inject a header.
func headerSafe(s string) string { return strings.NewReplacer("\r", "", "\n", "").Replace(s) }

//go:embed mailtmpl
var mailTemplates embed.FS

var (
	textTemplates = texttemplate.Must(texttemplate.ParseFS(mailTemplates, "mailtmpl/*.txt"))
	htmlTemplates = htmltemplate.Must(htmltemplate.ParseFS(mailTemplates, "mailtmpl/*.html"))
	mailSubjects  = map[string]string{
		"verify": "Confirm your e-mail address for Abacus",
		"reset":  "Reset your Abacus password",
		"invite": "You are invited to join %s on Abacus",
	}
)

type mailData struct {
	Email   string
	Link    string
	Expires string
	Tenant  string
	Role    string
}

// MailMessage is a message in the tenant's mail outbox. Bodies are kept
// only when no SMTP server is configured (development), so a developer
// can follow the links; with SMTP they are dropped once handed over.
type MailMessage struct {
	ID        string     `json:"id"`
	To        string     `json:"to"`
	Template  string     `json:"template"`
	Subject   string     `json:"subject"`
	Text      string     `json:"text,omitempty"`
	HTML      string     `json:"html,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// queueMail renders template name for to, stores it in the mail outbox
// inside tx and, after commit, hands it to the mailer in the background
// (so response times do not reveal whether an account exists).
func (s *Service) queueMail(ctx context.Context, tx *db.Tx, tenant, name, to string, d mailData) error {
	var tb, hb bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&tb, name+".txt", d); err != nil {
		return fmt.Errorf("rendering mail %s: %w", name, err)
	}
	if err := htmlTemplates.ExecuteTemplate(&hb, name+".html", d); err != nil {
		return fmt.Errorf("rendering mail %s: %w", name, err)
	}
	subject := mailSubjects[name]
	if strings.Contains(subject, "%s") {
		subject = fmt.Sprintf(subject, d.Tenant)
	}
	m := Mail{From: s.a.opt.from, To: to, Subject: subject, Text: tb.String(), HTML: hb.String()}
	id := abacus.NewID("msg")
	keepText, keepHTML := m.Text, m.HTML
	if s.a.opt.mailer != nil {
		keepText, keepHTML = "", "" // the links are credentials: do not keep them once mailed
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO mail_outbox (id, tenant_id, to_addr, template, subject, text_body, html_body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, id, tenant, to, name, subject, keepText, keepHTML, db.TimeOf(s.clock.Now())); err != nil {
		return fmt.Errorf("queueing mail: %w", err)
	}
	if s.a.opt.mailer == nil {
		tx.AfterCommit(func() {
			s.log.Info("mail kept in the outbox (no smtp.url configured); tenant admins read it at GET /api/v1/mail-outbox",
				"mail_id", id, "tenant_id", tenant, "template", name)
		})
		return nil
	}
	tx.AfterCommit(func() { go s.deliver(id, tenant, m) })
	return nil
}

func (s *Service) deliver(id, tenant string, m Mail) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.a.opt.mailer.Send(ctx, m)
	var errText any
	var sent db.NullTime
	if err != nil {
		s.log.Warn("sending mail failed", "mail_id", id, "tenant_id", tenant, "err", err)
		errText = err.Error()
	} else {
		sent = db.NullTime{Time: s.clock.Now(), Valid: true}
	}
	if _, uerr := s.db.ExecContext(ctx, `UPDATE mail_outbox SET sent_at = $1, error = $2 WHERE id = $3`, sent, errText, id); uerr != nil {
		s.log.Warn("recording mail delivery", "mail_id", id, "err", uerr)
	}
}

// ListMail returns the tenant's mail outbox, newest first.
func (s *Service) ListMail(ctx context.Context, limit int, cursor string) ([]MailMessage, string, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, "", err
	}
	limit = clampLimit(limit)
	q := `SELECT id, to_addr, template, subject, text_body, html_body, created_at, sent_at, error FROM mail_outbox WHERE tenant_id = $1`
	args := []any{tenant}
	if cursor != "" {
		q += ` AND id < $2`
		args = append(args, cursor)
	}
	rows, err := s.db.QueryContext(ctx, q+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit+1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing mail: %w", err)
	}
	defer rows.Close()
	out := []MailMessage{}
	for rows.Next() {
		var m MailMessage
		var at db.Time
		var sent db.NullTime
		var e *string
		if err := rows.Scan(&m.ID, &m.To, &m.Template, &m.Subject, &m.Text, &m.HTML, &at, &sent, &e); err != nil {
			return nil, "", err
		}
		m.CreatedAt, m.SentAt = at.Time, sent.Ptr()
		if e != nil {
			m.Error = *e
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	return page(out, limit, func(m MailMessage) string { return m.ID })
}

// link builds an e-mail link to path with the token as query parameter:
// on the application when one is configured, else on Abacus's hosted pages.
func (s *Service) link(path, tok string) string {
	base := s.a.opt.appURL
	if base == "" {
		base = s.a.opt.linkBase
	}
	return strings.TrimRight(base, "/") + path + "?token=" + url.QueryEscape(tok)
}

func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	default:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
}
