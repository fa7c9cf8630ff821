package billing

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/money"
)

// CreditNote corrects a finalized invoice. Amounts are positive.
type CreditNote struct {
	ID              string          `json:"id"`
	InvoiceID       string          `json:"invoice_id"`
	CustomerID      string          `json:"customer_id"`
	Number          string          `json:"number"`
	Currency        string          `json:"currency"`
	Reason          string          `json:"reason,omitempty"`
	Subtotal        decimal.Decimal `json:"subtotal"`
	TaxTotal        decimal.Decimal `json:"tax_total"`
	Total           decimal.Decimal `json:"total"`
	RefundToCredits bool            `json:"refund_to_credits"`
	CreatedAt       time.Time       `json:"created_at"`

	doc []byte
}

// CreditNoteLine credits (part of) one invoice line: Amount is net, the
// whole line's net amount when omitted.
type CreditNoteLine struct {
	LineID string           `json:"line_id"`
	Amount *decimal.Decimal `json:"amount,omitempty"`
}

// CreditNoteInput creates a credit note: the whole invoice (neither Lines
// nor Amount), some lines, or a net Amount shared pro rata across the
// invoice's tax groups.
type CreditNoteInput struct {
	InvoiceID       string           `json:"invoice_id"`
	Lines           []CreditNoteLine `json:"lines,omitempty"`
	Amount          *decimal.Decimal `json:"amount,omitempty" doc:"net amount, tax is added per the invoice's tax groups"`
	Reason          string           `json:"reason,omitempty"`
	RefundToCredits bool             `json:"refund_to_credits,omitempty" doc:"add the credited total to the customer's credit balance"`
}

// CreateCreditNote issues a credit note for a finalized invoice, numbered
// in the credit-note series. Errors: "invoice_not_found",
// "invalid_credit_note" naming bad fields, conflicts "invoice_not_creditable"
// (draft or void) and "credit_note_exceeds_remaining" (naming the amount
// that can still be credited). Nothing is written on error.
func (s *Service) CreateCreditNote(ctx context.Context, in CreditNoteInput) (CreditNote, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return CreditNote{}, err
	}
	now := s.now()
	var cn CreditNote
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		inv, err := lockInvoice(ctx, tx, tenant, in.InvoiceID)
		if err != nil {
			if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
				return e.WithField("invoice_id", "no such invoice")
			}
			return err
		}
		if inv.Status == Draft || inv.Status == Void {
			return abacus.Conflict("invoice_not_creditable", "invoice %s is %s; only finalized invoices can be credited", inv.ID, inv.Status).
				WithField("invoice_id", "is "+string(inv.Status))
		}
		var invDoc document.Document
		if err := json.Unmarshal(inv.doc, &invDoc); err != nil {
			return fmt.Errorf("decoding document of %s: %w", inv.ID, err)
		}
		cur, _ := money.LookupCurrency(inv.Currency)
		d := invDoc
		d.Kind, d.Lines, d.AllowanceCharges, d.Totals, d.Notes = document.KindCreditNote, nil, nil, document.Totals{}, invDoc.Notes
		d.InvoiceReference = &document.InvoiceReference{Number: inv.Number, IssueDate: invDoc.IssueDate}
		d.IssueDate, d.DueDate = document.DateOf(now), document.Date{}
		d.PaymentTerms = "The credited amount is refunded or offset against your next invoice."
		if d.PaymentMeans != nil {
			d.PaymentMeans.PaymentID = ""
		}
		var v abacus.Validation
		switch {
		case in.Amount != nil && len(in.Lines) > 0:
			v.Add("amount", "give either lines or amount, not both")
		case in.Amount != nil:
			if !in.Amount.IsPositive() || !in.Amount.Equal(in.Amount.Round(cur.Exponent)) {
				v.Add("amount", "must be above 0 with at most %d decimals", cur.Exponent)
				break
			}
			total := invDoc.Totals.TaxExclusive
			left := *in.Amount
			for i, g := range invDoc.TaxBreakdown {
				amt := left
				if i < len(invDoc.TaxBreakdown)-1 {
					amt = in.Amount.Mul(g.TaxableAmount).Div(total).Round(cur.Exponent)
					left = left.Sub(amt)
				}
				if amt.IsZero() {
					continue
				}
				d.Lines = append(d.Lines, document.Line{ID: fmt.Sprint(len(d.Lines) + 1), Name: "Credit: " + orDefault(in.Reason, "adjustment"),
					Quantity: decimal.NewFromInt(1), UnitCode: "C62", UnitPrice: amt, NetAmount: amt, Tax: g.Tax})
			}
		case len(in.Lines) > 0:
			byID := map[string]Line{}
			for _, l := range inv.Lines {
				byID[l.ID] = l
			}
			for i, cl := range in.Lines {
				f := fmt.Sprintf("lines[%d]", i)
				l, ok := byID[cl.LineID]
				switch {
				case !ok:
					v.Add(f+".line_id", "invoice %s has no line %q", inv.ID, cl.LineID)
					continue
				case l.Kind == LineDiscount || !l.NetAmount.IsPositive():
					v.Add(f+".line_id", "line %s is a discount or credit and cannot be credited", cl.LineID)
					continue
				}
				amt := l.NetAmount
				if cl.Amount != nil {
					amt = *cl.Amount
					if !amt.IsPositive() || amt.GreaterThan(l.NetAmount) || !amt.Equal(amt.Round(cur.Exponent)) {
						v.Add(f+".amount", "must be above 0 and at most the line's net amount %s", l.NetAmount)
						continue
					}
				}
				tax := l.Tax.Tax
				if tax.Category == document.TaxReverseCharge || tax.Category == document.TaxExempt {
					tax.ExemptionReason = l.Tax.ExemptionReason
				}
				d.Lines = append(d.Lines, document.Line{ID: fmt.Sprint(len(d.Lines) + 1), Name: l.Description, Quantity: decimal.NewFromInt(1),
					UnitCode: "C62", UnitPrice: amt, NetAmount: amt, Tax: tax, SellerItemID: l.ChargeKey})
			}
		default:
			d.Lines, d.AllowanceCharges = invDoc.Lines, invDoc.AllowanceCharges
		}
		if err := v.Err("invalid_credit_note"); err != nil {
			return err
		}
		if len(d.Lines) == 0 {
			return abacus.Invalid("invalid_credit_note", "the credit note has no lines").WithField("lines", "credit at least one line or amount")
		}
		d.ComputeTotals(document.RoundHalfUp)
		credited := decimal.Zero
		var sums sql.NullString
		rows, err := tx.QueryContext(ctx, `SELECT total FROM credit_notes WHERE tenant_id = $1 AND invoice_id = $2`, tenant, inv.ID)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := rows.Scan(&sums); err != nil {
				rows.Close()
				return err
			}
			t, _ := decimal.NewFromString(sums.String)
			credited = credited.Add(t)
		}
		rows.Close()
		left := inv.Total.Sub(credited)
		if d.Totals.TaxInclusive.GreaterThan(left) {
			return abacus.Conflict("credit_note_exceeds_remaining", "the credit note totals %s %s but only %s %s of invoice %s remains creditable",
				d.Totals.TaxInclusive, inv.Currency, left, inv.Currency, inv.Number).WithField("amount", "at most "+left.String()+" (tax inclusive) remains")
		}
		st, err := loadSettings(ctx, tx, tenant, s.defaultSettings())
		if err != nil {
			return err
		}
		if d.Number, err = nextNumber(ctx, tx, tenant, st.CreditNotePrefix, now); err != nil {
			return err
		}
		cn = CreditNote{ID: abacus.NewID("cn"), InvoiceID: inv.ID, CustomerID: inv.CustomerID, Number: d.Number, Currency: inv.Currency,
			Reason: in.Reason, Subtotal: d.Totals.TaxExclusive, TaxTotal: d.Totals.Tax, Total: d.Totals.TaxInclusive,
			RefundToCredits: in.RefundToCredits, CreatedAt: now}
		if in.Reason != "" {
			d.Notes = append(d.Notes, in.Reason)
		}
		if cn.doc, err = json.Marshal(&d); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO credit_notes (id, tenant_id, invoice_id, customer_id, number, currency, reason, subtotal,
			tax_total, total, refund_to_credits, document, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			cn.ID, tenant, cn.InvoiceID, cn.CustomerID, cn.Number, cn.Currency, cn.Reason, cn.Subtotal.String(), cn.TaxTotal.String(),
			cn.Total.String(), boolInt(cn.RefundToCredits), string(cn.doc), db.TimeOf(now)); err != nil {
			return fmt.Errorf("inserting credit note: %w", err)
		}
		if cn.RefundToCredits {
			e := CreditEntry{ID: abacus.NewID("cre"), CustomerID: cn.CustomerID, Currency: cn.Currency, Kind: CreditRefund, Amount: cn.Total,
				CreditNoteID: cn.ID, Description: "Refund of credit note " + cn.Number, CreatedAt: now}
			e.GrantID = e.ID
			if err := insertEntry(ctx, tx, tenant, e); err != nil {
				return err
			}
		}
		_, err = CreditNoteCreated.Record(ctx, tx, tenant, cn.ID, now, cn)
		return err
	})
	if err != nil {
		return CreditNote{}, wrap("creating credit note", err)
	}
	return cn, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

const creditNoteCols = `id, invoice_id, customer_id, number, currency, reason, subtotal, tax_total, total, refund_to_credits, document, created_at`

func scanCreditNote(r interface{ Scan(...any) error }) (CreditNote, error) {
	var cn CreditNote
	var sub, tax, total, doc string
	var refund int
	var ca db.Time
	if err := r.Scan(&cn.ID, &cn.InvoiceID, &cn.CustomerID, &cn.Number, &cn.Currency, &cn.Reason, &sub, &tax, &total, &refund, &doc, &ca); err != nil {
		return cn, err
	}
	cn.Subtotal, _ = decimal.NewFromString(sub)
	cn.TaxTotal, _ = decimal.NewFromString(tax)
	cn.Total, _ = decimal.NewFromString(total)
	cn.RefundToCredits, cn.doc, cn.CreatedAt = refund == 1, []byte(doc), ca.Time
	return cn, nil
}

// GetCreditNote returns credit note id, or "credit_note_not_found".
func (s *Service) GetCreditNote(ctx context.Context, id string) (CreditNote, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return CreditNote{}, err
	}
	cn, err := scanCreditNote(s.db.QueryRowContext(ctx, `SELECT `+creditNoteCols+` FROM credit_notes WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return cn, abacus.NotFound("credit_note", id)
	}
	return cn, err
}

// ListCreditNotes returns a page of credit notes ordered by id, of one
// invoice when invoiceID is set.
func (s *Service) ListCreditNotes(ctx context.Context, invoiceID string, limit int, cursor string) (Page[CreditNote], error) {
	return s.listCreditNotes(ctx, "invoice_id", invoiceID, limit, cursor)
}

// CustomerCreditNotes returns a page of one customer's credit notes
// ordered by id (the customer portal's list).
func (s *Service) CustomerCreditNotes(ctx context.Context, customerID string, limit int, cursor string) (Page[CreditNote], error) {
	if customerID == "" {
		return Page[CreditNote]{Data: []CreditNote{}}, nil
	}
	return s.listCreditNotes(ctx, "customer_id", customerID, limit, cursor)
}

// listCreditNotes lists credit notes, those whose column col equals val
// when val is set (col is a constant of this file, never input).
func (s *Service) listCreditNotes(ctx context.Context, col, val string, limit int, cursor string) (Page[CreditNote], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Page[CreditNote]{}, err
	}
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	q := `SELECT ` + creditNoteCols + ` FROM credit_notes WHERE tenant_id = $1 AND id > $2`
	args := []any{tenant, cursor}
	if val != "" {
		q += ` AND ` + col + ` = $3`
		args = append(args, val)
	}
	rows, err := s.db.QueryContext(ctx, q+fmt.Sprintf(` ORDER BY id LIMIT %d`, limit+1), args...)
	if err != nil {
		return Page[CreditNote]{}, fmt.Errorf("listing credit notes: %w", err)
	}
	defer rows.Close()
	out := Page[CreditNote]{Data: []CreditNote{}}
	for rows.Next() {
		cn, err := scanCreditNote(rows)
		if err != nil {
			return out, err
		}
		out.Data = append(out.Data, cn)
	}
	if len(out.Data) > limit {
		out.Data = out.Data[:limit]
		out.NextCursor = out.Data[limit-1].ID
	}
	return out, rows.Err()
}

// CreditNoteDocument returns the document of credit note id.
func (s *Service) CreditNoteDocument(ctx context.Context, id string) (*document.Document, error) {
	cn, err := s.GetCreditNote(ctx, id)
	if err != nil {
		return nil, err
	}
	var d document.Document
	if err := json.Unmarshal(cn.doc, &d); err != nil {
		return nil, fmt.Errorf("decoding credit note %s: %w", id, err)
	}
	return &d, nil
}

// UpcomingInvoice returns what subscription id's next invoice would hold
// if its cycle closed now: usage so far, fees, prorations, discounts,
// taxes. Nothing is stored. Errors: "subscription_not_found".
func (s *Service) UpcomingInvoice(ctx context.Context, id string) (Invoice, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Invoice{}, err
	}
	now := s.now()
	subs, err := s.subs.Load(ctx, s.db, tenant, []string{id})
	if err != nil {
		return Invoice{}, err
	}
	sub := subs[id]
	if sub == nil {
		return Invoice{}, abacus.NotFound("subscription", id)
	}
	cus, err := catalog.LoadCustomer(ctx, s.db, tenant, sub.CustomerID)
	if err != nil {
		return Invoice{}, err
	}
	k := 0
	for k < 100000 && !boundary(sub, k).After(now) {
		k++
	}
	c := planCycle(sub, cus, k, &now)
	if err := fetchUsage(ctx, s.usage, tenant, []*cycle{c}); err != nil {
		return Invoice{}, err
	}
	tb, err := s.loadTenant(ctx, s.db, tenant)
	if err != nil {
		return Invoice{}, err
	}
	inv, _, err := s.buildInvoice(ctx, s.db, tb, c, "upcoming")
	if err != nil {
		return Invoice{}, err
	}
	if inv == nil {
		return Invoice{ID: "upcoming", CustomerID: cus.ID, SubscriptionID: id, Status: Draft, Currency: cus.Currency, PeriodStart: c.at,
			CycleIndex: k, Lines: []Line{}, FinalizeAt: c.at.Add(tb.settings.grace())}, nil
	}
	inv.CreatedAt, inv.UpdatedAt = now, now
	return *inv, nil
}
