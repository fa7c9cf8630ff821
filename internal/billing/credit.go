package billing

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/money"
)

// CreditKind is the kind of a credit ledger entry.
type CreditKind string

const (
	CreditGrant       CreditKind = "grant"        // promotional or contractual credit, may expire
	CreditTopUp       CreditKind = "top_up"       // prepaid by the customer
	CreditRefund      CreditKind = "refund"       // from a credit note
	CreditUsage       CreditKind = "usage"        // applied to an invoice (negative)
	CreditExpiry      CreditKind = "expiry"       // what was left of a grant when it expired (negative)
	CreditVoidRestore CreditKind = "void_restore" // given back when the invoice it paid was voided
)

// CreditEntry is one ledger entry. Positive entries (grant, top_up,
// refund) open a grant (GrantID = ID); the others draw on or restore one.
type CreditEntry struct {
	ID           string          `json:"id"`
	CustomerID   string          `json:"customer_id"`
	Currency     string          `json:"currency"`
	Kind         CreditKind      `json:"kind"`
	Amount       decimal.Decimal `json:"amount"`
	GrantID      string          `json:"grant_id"`
	ExpiresAt    *time.Time      `json:"expires_at,omitempty"`
	InvoiceID    string          `json:"invoice_id,omitempty"`
	CreditNoteID string          `json:"credit_note_id,omitempty"`
	Description  string          `json:"description,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
}

// Balance is a customer's credit balance in one currency, derived by
// summing the ledger.
type Balance struct {
	CustomerID string          `json:"customer_id"`
	Currency   string          `json:"currency"`
	Available  decimal.Decimal `json:"available"`
}

// GrantInput adds credit to a customer's wallet.
type GrantInput struct {
	Amount      decimal.Decimal `json:"amount"`
	Currency    string          `json:"currency,omitempty" doc:"the customer's currency when omitted"`
	Kind        CreditKind      `json:"kind,omitempty" enum:"grant,top_up" doc:"grant (default) or top_up"`
	ExpiresAt   *time.Time      `json:"expires_at,omitempty"`
	Description string          `json:"description,omitempty"`
}

// Grant adds credit to customer id. Errors: "customer_not_found",
// "invalid_credit_grant" naming bad fields.
func (s *Service) Grant(ctx context.Context, customerID string, in GrantInput) (CreditEntry, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return CreditEntry{}, err
	}
	cus, err := catalog.LoadCustomer(ctx, s.db, tenant, customerID)
	if err != nil {
		return CreditEntry{}, err
	}
	if in.Currency == "" {
		in.Currency = cus.Currency
	}
	in.Currency = strings.ToUpper(in.Currency)
	if in.Kind == "" {
		in.Kind = CreditGrant
	}
	now := s.now()
	var v abacus.Validation
	c, cerr := money.LookupCurrency(in.Currency)
	switch {
	case cerr != nil:
		v.Add("currency", "must be an ISO 4217 code such as EUR")
	case !in.Amount.IsPositive():
		v.Add("amount", "must be above 0")
	case !in.Amount.Equal(in.Amount.Round(c.Exponent)):
		v.Add("amount", "has more decimals than %s allows (%d)", c.Code, c.Exponent)
	}
	if in.Kind != CreditGrant && in.Kind != CreditTopUp {
		v.Add("kind", "must be grant or top_up")
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		v.Add("expires_at", "must be in the future")
	}
	if err := v.Err("invalid_credit_grant"); err != nil {
		return CreditEntry{}, err
	}
	e := CreditEntry{ID: abacus.NewID("cre"), CustomerID: cus.ID, Currency: in.Currency, Kind: in.Kind, Amount: in.Amount,
		ExpiresAt: in.ExpiresAt, Description: in.Description, CreatedAt: now}
	e.GrantID = e.ID
	err = s.db.InTx(ctx, func(tx *db.Tx) error { return insertEntry(ctx, tx, tenant, e) })
	return e, err
}

func insertEntry(ctx context.Context, tx *db.Tx, tenant string, e CreditEntry) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO credit_entries (id, tenant_id, customer_id, currency, kind, amount, grant_id, expires_at,
		invoice_id, credit_note_id, description, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		e.ID, tenant, e.CustomerID, e.Currency, string(e.Kind), e.Amount.String(), e.GrantID, db.NullTimeOf(e.ExpiresAt),
		nullStr(e.InvoiceID), nullStr(e.CreditNoteID), e.Description, db.TimeOf(e.CreatedAt))
	if err != nil {
		return fmt.Errorf("writing credit entry: %w", err)
	}
	return nil
}

func loadEntries(ctx context.Context, q db.Querier, tenant, customerID, currency string) ([]CreditEntry, error) {
	query := `SELECT id, customer_id, currency, kind, amount, grant_id, expires_at, COALESCE(invoice_id, ''), COALESCE(credit_note_id, ''),
		description, created_at FROM credit_entries WHERE tenant_id = $1 AND customer_id = $2`
	args := []any{tenant, customerID}
	if currency != "" {
		query += ` AND currency = $3`
		args = append(args, currency)
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading credit ledger: %w", err)
	}
	defer rows.Close()
	out := []CreditEntry{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func scanEntry(r interface{ Scan(...any) error }) (CreditEntry, error) {
	var e CreditEntry
	var kind, amt string
	var exp db.NullTime
	var ca db.Time
	if err := r.Scan(&e.ID, &e.CustomerID, &e.Currency, &kind, &amt, &e.GrantID, &exp, &e.InvoiceID, &e.CreditNoteID, &e.Description, &ca); err != nil {
		return e, err
	}
	e.Kind, e.ExpiresAt, e.CreatedAt = CreditKind(kind), exp.Ptr(), ca.Time
	var err error
	if e.Amount, err = decimal.NewFromString(amt); err != nil {
		return e, fmt.Errorf("decoding credit entry %s: %w", e.ID, err)
	}
	return e, nil
}

// grantLeft is what remains of one grant.
type grantLeft struct {
	id        string
	left      decimal.Decimal
	expiresAt *time.Time
}

// remaining sums the ledger by grant: the grants with something left and
// not expired at now, oldest-expiring first (never-expiring last).
func remaining(entries []CreditEntry, now time.Time) []grantLeft {
	byGrant := map[string]*grantLeft{}
	var order []string
	for _, e := range entries {
		g := byGrant[e.GrantID]
		if g == nil {
			g = &grantLeft{id: e.GrantID}
			byGrant[e.GrantID] = g
			order = append(order, e.GrantID)
		}
		g.left = g.left.Add(e.Amount)
		if e.ID == e.GrantID {
			g.expiresAt = e.ExpiresAt
		}
	}
	var out []grantLeft
	for _, id := range order {
		g := byGrant[id]
		if g.left.IsPositive() && (g.expiresAt == nil || g.expiresAt.After(now)) {
			out = append(out, *g)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].expiresAt, out[j].expiresAt
		switch {
		case a == nil:
			return false
		case b == nil:
			return true
		}
		return a.Before(*b)
	})
	return out
}

// CreditBalance returns customer id's available credit in currency (the
// customer's currency when empty). Errors: "customer_not_found".
func (s *Service) CreditBalance(ctx context.Context, customerID, currency string) (Balance, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Balance{}, err
	}
	cus, err := catalog.LoadCustomer(ctx, s.db, tenant, customerID)
	if err != nil {
		return Balance{}, err
	}
	if currency == "" {
		currency = cus.Currency
	}
	entries, err := loadEntries(ctx, s.db, tenant, cus.ID, strings.ToUpper(currency))
	if err != nil {
		return Balance{}, err
	}
	b := Balance{CustomerID: cus.ID, Currency: strings.ToUpper(currency)}
	for _, g := range remaining(entries, s.now()) {
		b.Available = b.Available.Add(g.left)
	}
	return b, nil
}

// CreditLedger returns every ledger entry of customer id, oldest first.
// Errors: "customer_not_found".
func (s *Service) CreditLedger(ctx context.Context, customerID string) ([]CreditEntry, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	cus, err := catalog.LoadCustomer(ctx, s.db, tenant, customerID)
	if err != nil {
		return nil, err
	}
	return loadEntries(ctx, s.db, tenant, cus.ID, "")
}

// planCredits draws up to max from the grants in the customer's ledger
// entries, oldest-expiring first: it returns the usage entries to write
// and the amount applied.
func planCredits(inv *Invoice, entries []CreditEntry, max decimal.Decimal, now time.Time) ([]CreditEntry, decimal.Decimal) {
	applied := decimal.Zero
	if !max.IsPositive() || len(entries) == 0 {
		return nil, applied
	}
	var out []CreditEntry
	for _, g := range remaining(entries, now) {
		take := decimal.Min(g.left, max.Sub(applied))
		if !take.IsPositive() {
			break
		}
		out = append(out, CreditEntry{ID: abacus.NewID("cre"), CustomerID: inv.CustomerID, Currency: inv.Currency,
			Kind: CreditUsage, Amount: take.Neg(), GrantID: g.id, InvoiceID: inv.ID, Description: "Applied to invoice " + inv.Number,
			CreatedAt: now})
		applied = applied.Add(take)
	}
	return out, applied
}

// restoreCredits gives back the credits applied to a voided invoice, to
// the grants they came from.
func restoreCredits(ctx context.Context, tx *db.Tx, tenant string, inv *Invoice, now time.Time) error {
	entries, err := loadEntries(ctx, tx, tenant, inv.CustomerID, inv.Currency)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.InvoiceID != inv.ID || e.Kind != CreditUsage {
			continue
		}
		if err := insertEntry(ctx, tx, tenant, CreditEntry{ID: abacus.NewID("cre"), CustomerID: inv.CustomerID, Currency: inv.Currency,
			Kind: CreditVoidRestore, Amount: e.Amount.Neg(), GrantID: e.GrantID, InvoiceID: inv.ID,
			Description: "Restored from voided invoice " + inv.Number, CreatedAt: now}); err != nil {
			return err
		}
	}
	return nil
}

// expireCredits writes an expiry entry for what is left of every grant
// that expired at or before now. It returns how many grants expired.
func (s *Service) expireCredits(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT g.tenant_id, g.customer_id, g.currency FROM credit_entries g
		WHERE g.expires_at IS NOT NULL AND g.expires_at <= $1 AND g.id = g.grant_id
		AND NOT EXISTS (SELECT 1 FROM credit_entries x WHERE x.grant_id = g.id AND x.kind = 'expiry')`, db.TimeOf(now))
	if err != nil {
		return 0, fmt.Errorf("finding expired credits: %w", err)
	}
	type key struct{ tenant, customer, currency string }
	var keys []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.tenant, &k.customer, &k.currency); err != nil {
			rows.Close()
			return 0, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	n := 0
	for _, k := range keys {
		err := s.db.InTx(ctx, func(tx *db.Tx) error {
			entries, err := loadEntries(ctx, tx, k.tenant, k.customer, k.currency)
			if err != nil {
				return err
			}
			left := map[string]decimal.Decimal{}
			expired := map[string]bool{}
			for _, e := range entries {
				left[e.GrantID] = left[e.GrantID].Add(e.Amount)
				if e.Kind == CreditExpiry {
					expired[e.GrantID] = true
				}
			}
			for _, e := range entries {
				if e.ID != e.GrantID || e.ExpiresAt == nil || e.ExpiresAt.After(now) || expired[e.ID] {
					continue
				}
				amt := left[e.ID]
				if amt.IsNegative() {
					amt = decimal.Zero
				}
				// Another worker may expire the same grant concurrently: the
				// unique index lets one entry in and this insert skips.
				res, err := tx.ExecContext(ctx, `INSERT INTO credit_entries (id, tenant_id, customer_id, currency, kind, amount, grant_id,
					expires_at, invoice_id, credit_note_id, description, created_at) VALUES ($1, $2, $3, $4, 'expiry', $5, $6, NULL, NULL, NULL,
					'Expired', $7) ON CONFLICT (tenant_id, grant_id) WHERE kind = 'expiry' DO NOTHING`,
					abacus.NewID("cre"), k.tenant, k.customer, k.currency, amt.Neg().String(), e.ID, db.TimeOf(now))
				if err != nil {
					return fmt.Errorf("expiring grant %s: %w", e.ID, err)
				}
				if c, err := res.RowsAffected(); err == nil && c > 0 {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
