package smtp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/notifications"
)

// Build renders m as an RFC 5322 message: multipart/alternative (plain
// text first, then HTML, both quoted-printable), inside multipart/mixed
// with base64 parts when there are attachments.
func Build(m notifications.Mail, now time.Time) ([]byte, error) {
	to, err := addressOnly(m.To)
	if err != nil {
		return nil, fmt.Errorf("recipient %q: %w", m.To, err)
	}
	var b bytes.Buffer
	header(&b, "From", m.From)
	header(&b, "To", (&mail.Address{Name: m.ToName, Address: to}).String())
	if m.ReplyTo != "" {
		header(&b, "Reply-To", m.ReplyTo)
	}
	header(&b, "Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header(&b, "Date", now.UTC().Format(time.RFC1123Z))
	if m.MessageID != "" {
		header(&b, "Message-ID", m.MessageID)
	}
	header(&b, "MIME-Version", "1.0")
	header(&b, "Auto-Submitted", "auto-generated")
	if len(m.Attachments) == 0 {
		alt := multipart.NewWriter(&b)
		header(&b, "Content-Type", `multipart/alternative; boundary="`+alt.Boundary()+`"`)
		b.WriteString("\r\n")
		if err := alternative(alt, m); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	mixed := multipart.NewWriter(&b)
	header(&b, "Content-Type", `multipart/mixed; boundary="`+mixed.Boundary()+`"`)
	b.WriteString("\r\n")
	boundary := multipart.NewWriter(io.Discard).Boundary()
	pw, err := mixed.CreatePart(textproto.MIMEHeader{"Content-Type": {`multipart/alternative; boundary="` + boundary + `"`}})
	if err != nil {
		return nil, err
	}
	alt := multipart.NewWriter(pw)
	if err := alt.SetBoundary(boundary); err != nil {
		return nil, err
	}
	if err := alternative(alt, m); err != nil {
		return nil, err
	}
	for _, a := range m.Attachments {
		if err := attach(mixed, a); err != nil {
			return nil, err
		}
	}
	if err := mixed.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// alternative writes the plain-text and HTML parts to w and closes it.
func alternative(w *multipart.Writer, m notifications.Mail) error {
	for _, p := range []struct{ ct, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", p.ct+"; charset=utf-8")
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		pw, err := w.CreatePart(h)
		if err != nil {
			return err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(p.body)); err != nil {
			return err
		}
		if err := qp.Close(); err != nil {
			return err
		}
	}
	return w.Close()
}

func attach(w *multipart.Writer, a notifications.Attachment) error {
	h := textproto.MIMEHeader{}
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	name := mime.QEncoding.Encode("utf-8", strings.NewReplacer("\r", "", "\n", "", `"`, "", `\`, "").Replace(a.Filename))
	h.Set("Content-Type", ct+`; name="`+name+`"`)
	h.Set("Content-Transfer-Encoding", "base64")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	pw, err := w.CreatePart(h)
	if err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString(a.Content)
	for len(enc) > 76 {
		fmt.Fprintf(pw, "%s\r\n", enc[:76])
		enc = enc[76:]
	}
	_, err = fmt.Fprintf(pw, "%s\r\n", enc)
	return err
}

func header(b *bytes.Buffer, k, v string) {
	fmt.Fprintf(b, "%s: %s\r\n", k, headerSafe(v))
}

// headerSafe drops line breaks so no value can inject a header.
func headerSafe(s string) string { return strings.NewReplacer("\r", "", "\n", "").Replace(s) }

// addressOnly returns the bare address of "Name <a@b>" or "a@b".
func addressOnly(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	if a.Address == "" {
		return "", errors.New("no address")
	}
	return a.Address, nil
}
