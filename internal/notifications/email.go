package notifications

import "context"

// Mail is one e-mail as a Sender transmits it.
type Mail struct {
	From, ReplyTo string
	To, ToName    string // the address, and the name shown with it
	Subject       string
	Text, HTML    string
	// MessageID is stable across retries of one delivery, so a receiver
	// can tell a resend after an unconfirmed attempt.
	MessageID   string
	Attachments []Attachment
}

// Sender transmits mail (the smtp adapter). Send returns nil only when the
// server accepted the message; an error wrapped with Permanent (a 5xx
// answer) is not retried.
type Sender interface {
	Send(ctx context.Context, m Mail) error
}

// Email is the e-mail channel. Without a Sender it is the development
// inbox: deliveries succeed at once and, with Config.KeepBodies, their
// bodies stay readable through the API.
type Email struct {
	svc    *Service
	sender Sender
	from   string
}

// NewEmail returns the e-mail channel sending through sender (nil: the
// development inbox) from defaultFrom unless the tenant set its own sender.
func NewEmail(svc *Service, sender Sender, defaultFrom string) *Email {
	return &Email{svc: svc, sender: sender, from: defaultFrom}
}

func (e *Email) Name() string { return ChannelEmail }

// Deliver sends d to its recipient's address with its attachments.
func (e *Email) Deliver(ctx context.Context, d Delivery) error {
	if e.sender == nil {
		return nil
	}
	st, err := e.svc.loadSettings(ctx, e.svc.db, d.TenantID)
	if err != nil {
		return err
	}
	from := e.from
	if st.From != "" {
		from = st.From
	}
	m := Mail{From: from, ReplyTo: st.ReplyTo, To: d.To.Email, Subject: d.Subject, Text: d.Text, HTML: d.HTML,
		MessageID: "<" + d.ID + "@abacus>", Attachments: d.Attachments}
	m.ToName = d.To.Name
	return e.sender.Send(ctx, m)
}
