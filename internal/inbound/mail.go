package inbound

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"

	"github.com/abacusbilling/abacus"
)

// attachment is one leaf part of an e-mail that may hold a document.
type attachment struct {
	Filename    string
	ContentType string
	Data        []byte
}

// mailHeader is what a received message's list shows of its headers.
type mailHeader struct {
	Subject   string
	MessageID string
}

// Bounds of what readMail takes apart: parts (at every depth) and the
// nesting of multiparts and attached messages.
const (
	maxMailParts = 200
	maxMailDepth = 8
)

// documentTypes are the media types of parts that are tried as documents
// even without a file name.
var documentTypes = map[string]bool{
	"application/xml": true, "text/xml": true, "application/pdf": true, "application/json": true,
	"application/octet-stream": true,
}

// readMail takes an RFC 5322 message apart: its subject and Message-ID,
// and every leaf part that may be a document (one with a file name, or
// of an XML, PDF, JSON or octet-stream type), decoded from base64 or
// quoted-printable. Attached messages (message/rfc822) are opened too: a
// forwarded supplier mail still delivers its invoice. Errors: KindInvalid
// "mail_unreadable" naming what could not be read.
func readMail(raw []byte) (mailHeader, []attachment, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return mailHeader{}, nil, abacus.Invalid("mail_unreadable", "the message has no readable header: %v", err)
	}
	dec := new(mime.WordDecoder)
	h := mailHeader{Subject: msg.Header.Get("Subject"), MessageID: strings.Trim(msg.Header.Get("Message-Id"), " <>")}
	if s, err := dec.DecodeHeader(h.Subject); err == nil {
		h.Subject = s
	}
	w := mailWalker{dec: dec}
	if err := w.walk(msg.Header, msg.Body, 0); err != nil {
		return h, nil, err
	}
	return h, w.out, nil
}

type header interface{ Get(string) string }

type mailWalker struct {
	dec   *mime.WordDecoder
	parts int
	out   []attachment
}

func (w *mailWalker) walk(h header, body io.Reader, depth int) error {
	if w.parts++; w.parts > maxMailParts {
		return abacus.Invalid("mail_unreadable", "the message has more than %d parts", maxMailParts)
	}
	if depth > maxMailDepth {
		return abacus.Invalid("mail_unreadable", "the message nests parts more than %d deep", maxMailDepth)
	}
	ct, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		ct, params = "text/plain", nil
	}
	if strings.HasPrefix(ct, "multipart/") {
		if params["boundary"] == "" {
			return abacus.Invalid("mail_unreadable", "a %s part has no boundary", ct)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return abacus.Invalid("mail_unreadable", "a %s part cannot be read: %v", ct, err)
			}
			if err := w.walk(p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}
	data, err := io.ReadAll(decodeTransfer(h.Get("Content-Transfer-Encoding"), body))
	if err != nil {
		return abacus.Invalid("mail_unreadable", "a %s part cannot be decoded: %v", ct, err)
	}
	if ct == "message/rfc822" {
		inner, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			return abacus.Invalid("mail_unreadable", "an attached message has no readable header: %v", err)
		}
		return w.walk(inner.Header, inner.Body, depth+1)
	}
	name := ""
	if _, dp, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil {
		name = dp["filename"]
	}
	if name == "" {
		name = params["name"]
	}
	if s, err := w.dec.DecodeHeader(name); err == nil {
		name = s
	}
	if name == "" && !documentTypes[ct] {
		return nil // the message's text
	}
	if name == "" {
		name = fmt.Sprintf("part-%d", w.parts)
	}
	w.out = append(w.out, attachment{Filename: name, ContentType: ct, Data: data})
	return nil
}

// decodeTransfer undoes a part's Content-Transfer-Encoding (base64 ignores
// line breaks; 7bit, 8bit and binary are as they are).
func decodeTransfer(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}
