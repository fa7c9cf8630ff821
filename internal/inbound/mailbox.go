package inbound

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Receiving by e-mail. Each tenant has one secret address,
// <token>@<domain>; the inbound-smtp role (package inbound/smtp) accepts
// mail for it. A message is handled in this order, so a crash never loses
// one the sender was told was accepted:
//
//	DATA ──▶ raw message in the object store (durable)
//	     ──▶ row inbound_messages, status received (committed)
//	     ──▶ each attachment through Receive (hash dedup, validate, store, document.received)
//	     ──▶ row processed (≥ 1 document) or rejected (none readable: 554 to the sender)
//	     ──▶ 250
//
// A crash after the row was committed leaves it received:
// ProcessPending (the role runs it at start and every minute) finishes
// it; attachments already stored are found again by their hash.

// MessageStatus is where a received e-mail stands.
type MessageStatus string

const (
	MessageReceived  MessageStatus = "received"  // stored; its attachments are not all processed yet
	MessageProcessed MessageStatus = "processed" // at least one attachment became a document
	MessageRejected  MessageStatus = "rejected"  // no attachment holds a document Abacus reads (error says why)
)

// MailAddress is a tenant's inbound e-mail address.
type MailAddress struct {
	Address   string    `json:"address" example:"k3v9q2m8d4x7t1bz@inbound.example.com" doc:"suppliers send invoices and credit notes here (UBL, CII or JSON attached, or a Factur-X/ZUGFeRD PDF)"`
	CreatedAt time.Time `json:"created_at"`
}

// ReceivedMail is an e-mail received at a tenant's inbound address.
type ReceivedMail struct {
	ID          string        `json:"id" example:"imsg_01jbx7k2q9m4r8t6v3w5y0z1ab"`
	ContentHash string        `json:"content_hash" doc:"SHA-256 of the raw message, hex"`
	Size        int64         `json:"size"`
	From        string        `json:"from" doc:"the envelope sender"`
	To          string        `json:"to" doc:"the inbound address it was sent to"`
	Subject     string        `json:"subject"`
	MessageID   string        `json:"message_id" doc:"its Message-ID header"`
	Status      MessageStatus `json:"status" enum:"received,processed,rejected"`
	Documents   []string      `json:"documents" doc:"the inbound documents (idoc_…) its attachments became; an attachment received before is its earlier document"`
	Notes       []string      `json:"notes" doc:"attachments that are not documents, and why"`
	Error       string        `json:"error,omitempty" doc:"why it was rejected"`
	ReceivedAt  time.Time     `json:"received_at"`
	ProcessedAt *time.Time    `json:"processed_at,omitempty"`
	tenant      string
	blobKey     string
}

// MailConfig configures receiving by e-mail.
type MailConfig struct {
	// Domain is the mail domain of the inbound addresses.
	Domain string
}

// ConfigureMail sets the inbound mail domain (default "localhost").
func (s *Service) ConfigureMail(c MailConfig) {
	s.mailDomain = strings.ToLower(c.Domain)
}

func (s *Service) domain() string {
	if s.mailDomain == "" {
		return "localhost"
	}
	return s.mailDomain
}

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newToken() string {
	b := make([]byte, 10) // 80 bits: the address is the only secret
	_, _ = rand.Read(b)
	return tokenEncoding.EncodeToString(b)
}

// Address returns the tenant's inbound address, creating it on first use.
func (s *Service) Address(ctx context.Context) (MailAddress, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return MailAddress{}, err
	}
	token, at, err := loadAddress(ctx, s.db, tenant)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		if err := insertAddress(ctx, s.db, tenant, newToken(), s.clock.Now()); err != nil {
			return MailAddress{}, err
		}
		token, at, err = loadAddress(ctx, s.db, tenant)
	}
	if err != nil {
		return MailAddress{}, err
	}
	return MailAddress{Address: token + "@" + s.domain(), CreatedAt: at}, nil
}

// RotateAddress gives the tenant a new inbound address; mail to the old
// one is refused from now on (550 5.1.1).
func (s *Service) RotateAddress(ctx context.Context) (MailAddress, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return MailAddress{}, err
	}
	now := s.clock.Now()
	token := newToken()
	if err := replaceAddress(ctx, s.db, tenant, token, now); err != nil {
		return MailAddress{}, err
	}
	return MailAddress{Address: token + "@" + s.domain(), CreatedAt: now.UTC().Truncate(time.Microsecond)}, nil
}

// TenantOf returns the tenant whose inbound address rcpt is. Errors:
// KindNotFound "inbound_address_not_found" for any other address
// (another domain included).
func (s *Service) TenantOf(ctx context.Context, rcpt string) (string, error) {
	notFound := abacus.NotFound("inbound_address", rcpt)
	local, domain, ok := strings.Cut(strings.ToLower(strings.Trim(rcpt, " <>")), "@")
	if !ok || domain != s.domain() || local == "" {
		return "", notFound
	}
	local, _, _ = strings.Cut(local, "+") // subaddresses reach the same tenant
	return tenantByToken(ctx, s.db, local)
}

// IncomingMail is one e-mail for one tenant, as the SMTP receiver got it.
type IncomingMail struct {
	Tenant string
	From   string // envelope sender
	To     string // the tenant's address it was sent to
	Raw    []byte
}

// ReceiveMail stores m and turns its attachments into documents (see the
// order above). The same raw message again (a sender retrying after a
// lost answer) returns the stored message, finishing it if a crash left
// it received. The message comes back with status processed or rejected;
// an error means it may not be stored (the sender should retry: 451) or
// is stored but not yet processed (ReceivedMail.ID is set: ProcessPending
// finishes it).
func (s *Service) ReceiveMail(ctx context.Context, m IncomingMail) (ReceivedMail, error) {
	ctx = tenantContext(ctx, m.Tenant)
	sum := sha256.Sum256(m.Raw)
	hash := hex.EncodeToString(sum[:])
	msg, err := loadMessageByHash(ctx, s.db, m.Tenant, hash)
	switch {
	case err == nil && msg.Status != MessageReceived:
		return msg, nil
	case err == nil:
		return s.process(ctx, msg, m.Raw)
	case abacus.ErrorKind(err) != abacus.KindNotFound:
		return ReceivedMail{}, err
	}
	msg = ReceivedMail{ID: abacus.NewID("imsg"), ContentHash: hash, Size: int64(len(m.Raw)), From: m.From, To: m.To,
		Status: MessageReceived, Documents: []string{}, Notes: []string{}, ReceivedAt: s.clock.Now().UTC().Truncate(time.Microsecond),
		tenant: m.Tenant, blobKey: "inbound-mail/" + m.Tenant + "/" + hash + ".eml"}
	if h, err := mail.ReadMessage(strings.NewReader(string(headerBytes(m.Raw)))); err == nil {
		msg.Subject = truncate(h.Header.Get("Subject"), 500)
		msg.MessageID = truncate(strings.Trim(h.Header.Get("Message-Id"), " <>"), 500)
	}
	if err := s.blobs.Put(ctx, msg.blobKey, m.Raw); err != nil {
		return ReceivedMail{}, fmt.Errorf("storing the received e-mail: %w", err)
	}
	if err := insertMessage(ctx, s.db, &msg); db.IsUniqueViolation(err) { // the same message, concurrently
		return loadMessageByHash(ctx, s.db, m.Tenant, hash)
	} else if err != nil {
		return ReceivedMail{}, err
	}
	return s.process(ctx, msg, m.Raw)
}

// headerBytes is the message's header block (up to the first empty line),
// enough to read the subject without decoding the body.
func headerBytes(raw []byte) []byte {
	s := string(raw)
	if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
		return raw[:i+4]
	}
	if i := strings.Index(s, "\n\n"); i >= 0 {
		return raw[:i+2]
	}
	return raw
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// process turns a stored message's attachments into documents and
// records the outcome. An error other than unreadable input (the
// database is away) leaves the message received, with ReceivedMail.ID set.
func (s *Service) process(ctx context.Context, msg ReceivedMail, raw []byte) (ReceivedMail, error) {
	if raw == nil {
		b, err := s.blobs.Get(ctx, msg.blobKey)
		if err != nil {
			return msg, fmt.Errorf("reading the stored e-mail %s: %w", msg.ID, err)
		}
		raw = b
	}
	msg.Documents, msg.Notes, msg.Error = []string{}, []string{}, ""
	_, parts, err := readMail(raw)
	if err != nil {
		msg.Error = err.Error()
	}
	for _, a := range parts {
		d, _, err := s.Receive(ctx, a.Data, SourceEmail)
		switch {
		case err == nil:
			if !slices.Contains(msg.Documents, d.ID) {
				msg.Documents = append(msg.Documents, d.ID)
			}
		case abacus.ErrorKind(err) == abacus.KindInvalid || abacus.ErrorKind(err) == abacus.KindTooLarge:
			msg.Notes = append(msg.Notes, fmt.Sprintf("%s (%s): %s", a.Filename, a.ContentType, errorMessage(err)))
		default:
			return msg, fmt.Errorf("processing e-mail %s: %w", msg.ID, err)
		}
	}
	msg.Status = MessageProcessed
	if len(msg.Documents) == 0 {
		msg.Status = MessageRejected
		if msg.Error == "" && len(parts) == 0 {
			msg.Error = "the message has no attachment; attach the invoice or credit note as UBL, CII or JSON, or send a Factur-X/ZUGFeRD PDF"
		} else if msg.Error == "" {
			msg.Error = "no attachment is an invoice or credit note Abacus reads: " + strings.Join(msg.Notes, "; ")
		}
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	msg.ProcessedAt = &now
	if err := finishMessage(ctx, s.db, &msg); err != nil {
		return msg, err
	}
	s.log.InfoContext(ctx, "e-mail received", "tenant", msg.tenant, "id", msg.ID, "status", msg.Status, "documents", len(msg.Documents))
	return msg, nil
}

func errorMessage(err error) string {
	if e, ok := abacus.AsError(err); ok {
		return e.Message
	}
	return err.Error()
}

// ProcessPending finishes messages a crash left received for longer than
// grace (younger ones may still be in their SMTP session), in every
// tenant, at most 100 per call; it returns how many it finished.
func (s *Service) ProcessPending(ctx context.Context, grace time.Duration) (int, error) {
	msgs, err := pendingMessages(ctx, s.db, s.clock.Now().Add(-grace), 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range msgs {
		if _, err := s.process(tenantContext(ctx, m.tenant), m, nil); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// tenantContext is ctx acting for tenant: the SMTP receiver and the
// reprocessing loop have no caller of their own.
func tenantContext(ctx context.Context, tenant string) context.Context {
	return abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", ID: "inbound-smtp", Scopes: []abacus.Scope{abacus.ScopeWrite}})
}

// GetMessage returns a received e-mail of the caller's tenant. Errors:
// not found "inbound_message_not_found".
func (s *Service) GetMessage(ctx context.Context, id string) (ReceivedMail, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return ReceivedMail{}, err
	}
	return loadMessage(ctx, s.db, tenant, id)
}

// MessageFilter selects messages for ListMessages.
type MessageFilter struct {
	Status MessageStatus
	Limit  int
	Cursor string
}

// ListMessages returns the tenant's received e-mails, oldest first, a
// page at a time.
func (s *Service) ListMessages(ctx context.Context, f MessageFilter) (abacus.List[ReceivedMail], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[ReceivedMail]{}, err
	}
	f.Limit = pageSize(f.Limit)
	msgs, err := listMessages(ctx, s.db, tenant, f)
	return pageOf(msgs, f.Limit, func(m ReceivedMail) string { return m.ID }), err
}
