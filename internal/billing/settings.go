package billing

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/identity"
)

// Settings are a tenant's billing settings. Seller is the tenant as it
// appears on documents (name, address, VAT id, Peppol endpoint).
type Settings struct {
	InvoicePrefix    string         `json:"invoice_prefix" doc:"numbers read PREFIX-YYYY-NNNNNN; each prefix is its own gapless series"`
	CreditNotePrefix string         `json:"credit_note_prefix"`
	GraceSeconds     int64          `json:"grace_seconds" doc:"usage grace period: invoices stay draft this long after the cycle ends"`
	DueDays          int            `json:"due_days" doc:"payment term in days after finalization"`
	Seller           document.Party `json:"seller"`
	PaymentTerms     string         `json:"payment_terms,omitempty"`
	// PaymentMeans is printed on every invoice (German domestic invoices
	// require it), e.g. {"code": "58", "iban": "DE89…"}.
	PaymentMeans *document.PaymentMeans `json:"payment_means,omitempty"`
}

// sellerBlob is how the seller column stores the seller and its payment means.
type sellerBlob struct {
	document.Party
	PaymentMeans *document.PaymentMeans `json:"payment_means,omitempty"`
}

var prefixRe = regexp.MustCompile(`^[A-Z0-9][A-Z0-9\-]{0,15}$`)

func (s *Service) defaultSettings() Settings {
	return Settings{InvoicePrefix: "INV", CreditNotePrefix: "CN", GraceSeconds: int64(s.cfg.Grace / time.Second), DueDays: 30}
}

func (st Settings) grace() time.Duration { return time.Duration(st.GraceSeconds) * time.Second }

func (st *Settings) validate() error {
	var v abacus.Validation
	st.InvoicePrefix = strings.ToUpper(strings.TrimSpace(st.InvoicePrefix))
	st.CreditNotePrefix = strings.ToUpper(strings.TrimSpace(st.CreditNotePrefix))
	if !prefixRe.MatchString(st.InvoicePrefix) {
		v.Add("invoice_prefix", "must be 1–16 letters, digits or dashes, e.g. INV")
	}
	if !prefixRe.MatchString(st.CreditNotePrefix) {
		v.Add("credit_note_prefix", "must be 1–16 letters, digits or dashes, e.g. CN")
	}
	if st.InvoicePrefix == st.CreditNotePrefix && st.InvoicePrefix != "" {
		v.Add("credit_note_prefix", "must differ from invoice_prefix: credit notes have their own series")
	}
	if st.GraceSeconds < 0 || st.GraceSeconds > 31*86400 {
		v.Add("grace_seconds", "must be between 0 and 2678400 (31 days)")
	}
	if st.DueDays < 0 || st.DueDays > 365 {
		v.Add("due_days", "must be between 0 and 365")
	}
	st.Seller.CountryCode = strings.ToUpper(strings.TrimSpace(st.Seller.CountryCode))
	if st.Seller.CountryCode != "" && len(st.Seller.CountryCode) != 2 {
		v.Add("seller.country_code", "must be an ISO 3166-1 alpha-2 code such as DE")
	}
	return v.Err("invalid_billing_settings")
}

func loadSettings(ctx context.Context, q db.Querier, tenant string, def Settings) (Settings, error) {
	var st Settings
	var seller string
	err := q.QueryRowContext(ctx, `SELECT invoice_prefix, credit_note_prefix, grace_seconds, due_days, seller, payment_terms
		FROM billing_settings WHERE tenant_id = $1`, tenant).Scan(&st.InvoicePrefix, &st.CreditNotePrefix, &st.GraceSeconds, &st.DueDays, &seller, &st.PaymentTerms)
	if errors.Is(err, sql.ErrNoRows) {
		def.Seller.Name, _ = identity.TenantName(ctx, q, tenant) // best effort: the seller's name is editable
		return def, nil
	}
	if err != nil {
		return st, fmt.Errorf("reading billing settings: %w", err)
	}
	var blob sellerBlob
	if err := json.Unmarshal([]byte(seller), &blob); err != nil {
		return st, fmt.Errorf("decoding seller: %w", err)
	}
	st.Seller, st.PaymentMeans = blob.Party, blob.PaymentMeans
	return st, nil
}

// Settings returns the tenant's billing settings (defaults when never set).
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Settings{}, err
	}
	return loadSettings(ctx, s.db, tenant, s.defaultSettings())
}

// PutSettings replaces the tenant's billing settings. It returns
// "invalid_billing_settings" naming every bad field.
func (s *Service) PutSettings(ctx context.Context, st Settings) (Settings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Settings{}, err
	}
	if err := st.validate(); err != nil {
		return Settings{}, err
	}
	seller, _ := json.Marshal(sellerBlob{Party: st.Seller, PaymentMeans: st.PaymentMeans})
	_, err = s.db.ExecContext(ctx, `INSERT INTO billing_settings (tenant_id, invoice_prefix, credit_note_prefix, grace_seconds, due_days, seller, payment_terms, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (tenant_id) DO UPDATE SET invoice_prefix = excluded.invoice_prefix, credit_note_prefix = excluded.credit_note_prefix,
		grace_seconds = excluded.grace_seconds, due_days = excluded.due_days, seller = excluded.seller, payment_terms = excluded.payment_terms,
		updated_at = excluded.updated_at`,
		tenant, st.InvoicePrefix, st.CreditNotePrefix, st.GraceSeconds, st.DueDays, string(seller), st.PaymentTerms, db.TimeOf(s.now()))
	if err != nil {
		return Settings{}, fmt.Errorf("saving billing settings: %w", err)
	}
	return st, nil
}

// nextNumber takes the next number of series inside tx. The counter row is
// updated in place (PostgreSQL row lock, SQLite write lock), so two
// finalizations serialise on it and a rollback returns the number.
func nextNumber(ctx context.Context, tx *db.Tx, tenant, prefix string, at time.Time) (string, error) {
	n, err := takeNumbers(ctx, tx, tenant, prefix, 1)
	if err != nil {
		return "", err
	}
	return formatNumber(prefix, at, n), nil
}

// takeNumbers reserves the next n numbers of series prefix inside tx with
// one counter update and returns the first.
func takeNumbers(ctx context.Context, tx *db.Tx, tenant, prefix string, n int) (int64, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO billing_sequences (tenant_id, series, last) VALUES ($1, $2, 0)
		ON CONFLICT (tenant_id, series) DO NOTHING`, tenant, prefix); err != nil {
		return 0, fmt.Errorf("creating sequence %s: %w", prefix, err)
	}
	var last int64
	if err := tx.QueryRowContext(ctx, `UPDATE billing_sequences SET last = last + $3 WHERE tenant_id = $1 AND series = $2 RETURNING last`,
		tenant, prefix, n).Scan(&last); err != nil {
		return 0, fmt.Errorf("taking numbers of %s: %w", prefix, err)
	}
	return last - int64(n) + 1, nil
}

// formatNumber renders number n of series prefix, e.g. INV-2026-000123.
func formatNumber(prefix string, at time.Time, n int64) string {
	return fmt.Sprintf("%s-%04d-%06d", prefix, at.UTC().Year(), n)
}
