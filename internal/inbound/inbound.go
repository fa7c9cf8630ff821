// Package inbound receives e-documents a tenant's suppliers send: invoices
// and credit notes in any format internal/document reads (UBL, CII,
// Factur-X/ZUGFeRD PDF, the model's JSON), detected from the content.
// Each is stored once (by the SHA-256 of its bytes) in the object store,
// normalised into the format-neutral model, validated with a report, and
// announced as a document.received domain event (webhooks carry it).
// Documents with the same supplier, number and issue date as an earlier one
// are flagged as duplicates.
//
// Receiving is crash-safe without a queue:
//
//	bytes ──hash──▶ known? ──yes──▶ the stored document (same answer)
//	                  │no
//	                  ▼
//	parse + validate (in memory; unreadable input is refused, nothing stored)
//	                  ▼
//	put original in the object store (durable, key from tenant + hash)
//	                  ▼
//	one transaction: metadata row + document.received event
//
// A crash before the commit leaves at most an object nobody points at,
// which the next upload of the same bytes overwrites with the same
// content: the document is absent and re-processable from its source. A
// crash after it leaves the document stored and processed.
package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/document"
)

// Status says whether a received document broke a rule.
type Status string

const (
	StatusValid   Status = "valid"
	StatusInvalid Status = "invalid" // breaks a rule of EN 16931 or its profile; the report says which
)

// Source says how a document arrived.
type Source string

const (
	SourceAPI   Source = "api"
	SourceEmail Source = "email"
)

// Document is a received document's metadata and validation report.
type Document struct {
	ID           string           `json:"id"`
	ContentHash  string           `json:"content_hash" doc:"SHA-256 of the original bytes, hex"`
	Size         int64            `json:"size"`
	Format       document.Format  `json:"format" doc:"the format it came in"`
	Source       Source           `json:"source"`
	Status       Status           `json:"status"`
	Kind         string           `json:"kind"`
	Number       string           `json:"number"`
	IssueDate    string           `json:"issue_date"`
	SupplierKey  string           `json:"supplier_key" doc:"the seller's VAT id, else legal id, else electronic address, else name"`
	SupplierName string           `json:"supplier_name"`
	Currency     string           `json:"currency"`
	Payable      string           `json:"payable"`
	DuplicateOf  string           `json:"duplicate_of,omitempty"`
	Report       *document.Report `json:"report"`
	ReceivedAt   time.Time        `json:"received_at"`
	RetainUntil  time.Time        `json:"retain_until" doc:"the original is kept, unchanged, at least until then (the tenant's retention when it was received); it cannot be deleted before"`
	blobKey      string
}

// Service receives and serves documents.
type Service struct {
	db    *db.DB
	blobs blob.Store
	clock abacus.Clock
	log   *slog.Logger

	mailDomain string // mailbox.go
}

// NewService returns a Service storing originals in blobs.
func NewService(d *db.DB, blobs blob.Store, clock abacus.Clock, log *slog.Logger) *Service {
	return &Service{db: d, blobs: blobs, clock: clock, log: log}
}

// supplierKey identifies the seller for duplicate detection.
func supplierKey(p document.Party) string {
	for _, k := range []string{p.VATID, p.LegalID, p.EndpointID, p.Name} {
		if k = strings.ToUpper(strings.Join(strings.Fields(k), "")); k != "" {
			return k
		}
	}
	return ""
}

// Receive stores and checks data (see the package doc). created is false
// when the same bytes were received before: the earlier document is
// returned and nothing new is recorded. Errors: those of document.Parse
// for input that cannot be read at all (KindInvalid "ubl_unreadable",
// "document_format_unrecognised", "facturx_no_xml"; KindTooLarge); a
// document that reads but breaks rules is stored with status invalid.
func (s *Service) Receive(ctx context.Context, data []byte, source Source) (doc Document, created bool, err error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Document{}, false, err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if d, err := loadByHash(ctx, s.db, tenant, hash); err == nil {
		return d, false, nil
	} else if e, ok := abacus.AsError(err); !ok || e.Kind != abacus.KindNotFound {
		return Document{}, false, err
	}
	parsed, rep, err := document.Parse(data)
	if err != nil {
		return Document{}, false, err
	}
	years, err := s.retentionYears(ctx, tenant)
	if err != nil {
		return Document{}, false, err
	}
	now := s.clock.Now()
	d := Document{
		ID: abacus.NewID("idoc"), ContentHash: hash, Size: int64(len(data)), Format: rep.Format, Source: source,
		Status: StatusValid, Kind: string(parsed.Kind), Number: parsed.Number, IssueDate: parsed.IssueDate.String(),
		SupplierKey: supplierKey(parsed.Seller), SupplierName: parsed.Seller.Name, Currency: parsed.Currency,
		Payable: parsed.Totals.Payable.String(), Report: rep, ReceivedAt: now.UTC().Truncate(time.Microsecond),
		RetainUntil: now.UTC().Truncate(time.Microsecond).AddDate(years, 0, 0),
		blobKey:     "inbound/" + tenant + "/" + hash + ".orig",
	}
	if !rep.Valid() {
		d.Status = StatusInvalid
	}
	if rep.Violations == nil {
		rep.Violations = []document.Violation{}
	}
	if rep.Dropped == nil {
		rep.Dropped = []string{}
	}
	if err := s.blobs.Put(ctx, d.blobKey, data); err != nil {
		return Document{}, false, fmt.Errorf("storing the received document: %w", err)
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if d.Number != "" && d.SupplierKey != "" {
			dup, err := findDuplicate(ctx, tx, tenant, d.SupplierKey, d.Number, d.IssueDate)
			if err != nil {
				return err
			}
			d.DuplicateOf = dup
		}
		if err := insertDocument(ctx, tx, tenant, &d); err != nil {
			return err
		}
		_, err := DocumentReceived.Record(ctx, tx, tenant, d.ID, now, ReceivedEvent{
			ID: d.ID, Format: string(d.Format), Source: string(d.Source), Status: d.Status, Kind: d.Kind, Number: d.Number,
			IssueDate: d.IssueDate, SupplierName: d.SupplierName, Currency: d.Currency, Payable: d.Payable,
			Violations: len(rep.Violations), DuplicateOf: d.DuplicateOf, ReceivedAt: d.ReceivedAt,
		})
		return err
	})
	if db.IsUniqueViolation(err) { // the same bytes, received concurrently
		d, err := loadByHash(ctx, s.db, tenant, hash)
		return d, false, err
	}
	if err != nil {
		return Document{}, false, fmt.Errorf("recording the received document: %w", err)
	}
	s.log.InfoContext(ctx, "document received", "tenant", tenant, "id", d.ID, "format", d.Format, "status", d.Status, "duplicate_of", d.DuplicateOf)
	return d, true, nil
}

// Get returns document id of the caller's tenant. Errors: not found
// "inbound_document_not_found".
func (s *Service) Get(ctx context.Context, id string) (Document, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Document{}, err
	}
	return loadDocument(ctx, s.db, tenant, id)
}

// Original returns the bytes document id was received as.
func (s *Service) Original(ctx context.Context, id string) (Document, []byte, error) {
	d, err := s.Get(ctx, id)
	if err != nil {
		return d, nil, err
	}
	b, err := s.blobs.Get(ctx, d.blobKey)
	if err != nil {
		return d, nil, fmt.Errorf("reading the original of %s: %w", id, err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.ContentHash {
		// The original is immutable: bytes that no longer hash to what was
		// received are never served as it.
		return d, nil, fmt.Errorf("the stored original of %s does not match its SHA-256 %s: it was altered in the object store", id, d.ContentHash)
	}
	return d, b, nil
}

// Render returns document id normalised and rendered in format f: the
// original is read again (the parser is deterministic), so renditions
// need no storage of their own. Errors of Get and document.Render; an
// invalid document renders only as JSON and PDF (the e-invoice formats
// refuse it with its violations).
func (s *Service) Render(ctx context.Context, id string, f document.Format) ([]byte, error) {
	_, data, err := s.Original(ctx, id)
	if err != nil {
		return nil, err
	}
	d, _, err := document.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("reading the original of %s again: %w", id, err)
	}
	return document.Render(d, f)
}

// ListFilter selects documents for List.
type ListFilter struct {
	Status    Status
	Duplicate *bool // only duplicates (true) or only originals (false)
	Limit     int
	Cursor    string
}

// List returns the tenant's documents, newest id last, a page at a time.
func (s *Service) List(ctx context.Context, f ListFilter) (abacus.List[Document], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Document]{}, err
	}
	f.Limit = pageSize(f.Limit)
	docs, err := listDocuments(ctx, s.db, tenant, f)
	return pageOf(docs, f.Limit, func(d Document) string { return d.ID }), err
}

// pageSize is limit within 1–100, 50 when not given.
func pageSize(limit int) int {
	if limit <= 0 || limit > 100 {
		return 50
	}
	return limit
}

// pageOf is the list page of items, fetched with one more than limit:
// the extra one says there is a next page, which starts after the last id.
func pageOf[T any](items []T, limit int, id func(T) string) abacus.List[T] {
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = id(items[len(items)-1])
	}
	return abacus.ListOf(items, next)
}

func reportJSON(r *document.Report) string {
	b, _ := json.Marshal(r) // a Report always encodes
	return string(b)
}
