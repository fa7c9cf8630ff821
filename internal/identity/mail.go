package identity

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/smtp"
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

// SMTPMailer sends mail through the notifications module's SMTP adapter.
type SMTPMailer struct{ s *smtp.Sender }

// NewSMTPMailer parses smtp://[user:pass@]host[:port] (STARTTLS when the
// server offers it) or smtps://… (implicit TLS). Its error names what is
// wrong with the URL and never contains the password.
func NewSMTPMailer(rawURL string) (*SMTPMailer, error) {
	s, err := smtp.New(rawURL, smtp.Options{})
	if err != nil {
		return nil, err
	}
	return &SMTPMailer{s: s}, nil
}

// Send delivers m as multipart/alternative (plain text and HTML).
func (m *SMTPMailer) Send(ctx context.Context, ml Mail) error {
	return m.s.Send(ctx, notifications.Mail{From: ml.From, To: ml.To, Subject: ml.Subject, Text: ml.Text, HTML: ml.HTML})
}

// mailerSender lets any Mailer carry the notifications module's e-mail.
type mailerSender struct{ m Mailer }

func (a mailerSender) Send(ctx context.Context, m notifications.Mail) error {
	return a.m.Send(ctx, Mail{From: m.From, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML})
}

// mailTemplates maps identity's mails to the notifications module's
// built-in templates (docs/notifications.md lists their variables).
var mailTemplates = map[string]string{
	"verify": "staff.verify_email",
	"reset":  "staff.reset_password",
	"invite": "staff.invitation",
}

type mailData struct {
	Email   string
	Link    string
	Expires string
	Tenant  string
	Role    string
}

// MailMessage is an e-mail identity sent, as the notifications module
// records it. Bodies are kept only when no SMTP server is configured
// (development), so a developer can follow the links; with SMTP they are
// never stored.
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

// notifier is the notifications service identity's mail goes through: the
// e-mail channel over the configured Mailer (none: the development inbox).
// It is cheap to build; the shared notifications role delivers the same
// rows if this process does not get to them first.
func (s *Service) notifier() *notifications.Service {
	n := notifications.New(s.db, s.clock, s.log, notifications.Config{KeepBodies: s.a.opt.mailer == nil})
	var sender notifications.Sender
	switch m := s.a.opt.mailer.(type) {
	case nil:
	case *SMTPMailer:
		sender = m.s
	default:
		sender = mailerSender{m}
	}
	n.RegisterChannel(notifications.NewEmail(n, sender, s.a.opt.from))
	return n
}

// queueMail records mail name to to inside tx through the notifications
// module and, after commit, delivers it in the background (so response
// times do not reveal whether an account exists).
func (s *Service) queueMail(ctx context.Context, tx *db.Tx, tenant, name, to string, d mailData) error {
	n := s.notifier()
	id, err := n.Enqueue(ctx, tx, notifications.Message{
		TenantID: tenant, Template: mailTemplates[name], Source: "identity",
		To: notifications.Recipient{Kind: notifications.RecipientEmail, Email: to},
		Data: map[string]any{"email": d.Email, "link": d.Link, "expires": d.Expires, "role": d.Role,
			"tenant": map[string]any{"name": d.Tenant}},
	})
	if err != nil {
		return fmt.Errorf("queueing mail %s: %w", name, err)
	}
	tx.AfterCommit(func() {
		if s.a.opt.mailer != nil {
			go s.deliver(n, id, tenant, 2*time.Minute)
			return
		}
		// Development: keep it in the inbox before answering, so the
		// link can be read as soon as the request returns.
		s.deliver(n, id, tenant, 10*time.Second)
		s.log.Info("mail kept in the development inbox (no smtp.url configured); tenant admins read it at GET /api/v1/mail-outbox",
			"notification_id", id, "tenant_id", tenant, "template", mailTemplates[name])
	})
	return nil
}

func (s *Service) deliver(n *notifications.Service, id, tenant string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := n.DeliverNotification(ctx, id); err != nil {
		s.log.Warn("delivering mail", "notification_id", id, "tenant_id", tenant, "err", err)
	}
}

// ListMail returns the e-mail the tenant's notifications sent or will
// send (identity's and the others'), newest first.
func (s *Service) ListMail(ctx context.Context, limit int, cursor string) ([]MailMessage, string, error) {
	list, next, err := notifications.ListNotifications(ctx, s.db, notifications.Filter{Channel: notifications.ChannelEmail,
		Limit: clampLimit(limit), Cursor: cursor})
	if err != nil {
		return nil, "", err
	}
	out := make([]MailMessage, 0, len(list))
	for _, n := range list {
		m := MailMessage{ID: n.ID, To: n.To.Email, Template: n.Template, CreatedAt: n.CreatedAt}
		for _, d := range n.Deliveries {
			if d.Channel == notifications.ChannelEmail {
				m.Subject, m.Text, m.HTML, m.SentAt, m.Error = d.Subject, d.Text, d.HTML, d.SentAt, d.LastError
			}
		}
		out = append(out, m)
	}
	return out, next, nil
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
