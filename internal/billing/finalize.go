package billing

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
)

// invoiceTransitions is the state machine of the package doc.
var invoiceTransitions = map[Status][]Status{
	Draft:         {Open},
	Open:          {Paid, Void, Uncollectible},
	Uncollectible: {Paid, Void},
}

func checkInvoiceTransition(inv *Invoice, to Status) error {
	for _, s := range invoiceTransitions[inv.Status] {
		if s == to {
			return nil
		}
	}
	verb := map[Status]string{Open: "finalized", Paid: "marked paid", Void: "voided", Uncollectible: "marked uncollectible"}[to]
	return abacus.Conflict("invalid_invoice_transition", "invoice %s is %s and cannot be %s", inv.ID, inv.Status, verb).
		WithField("status", "is "+string(inv.Status))
}

// finalizeTx numbers inv, applies credits, freezes its document and opens
// it (or marks it paid when credits cover it), inside tx.
func (s *Service) finalizeTx(ctx context.Context, tx *db.Tx, tb *tenantBatch, tenant string, inv *Invoice, cus catalog.Customer, now time.Time) error {
	if err := checkInvoiceTransition(inv, Open); err != nil {
		return err
	}
	if err := checkProblems(inv); err != nil {
		return err
	}
	number, err := nextNumber(ctx, tx, tenant, tb.settings.InvoicePrefix, now)
	if err != nil {
		return err
	}
	var entries []CreditEntry
	if inv.Total.IsPositive() {
		if entries, err = loadEntries(ctx, tx, tenant, inv.CustomerID, inv.Currency); err != nil {
			return err
		}
	}
	used, events, err := finalizeInvoice(inv, cus, tb.settings, number, entries, now)
	if err != nil {
		return err
	}
	for _, e := range used {
		if err := insertEntry(ctx, tx, tenant, e); err != nil {
			return err
		}
	}
	if err := saveInvoice(ctx, tx, tenant, inv); err != nil {
		return err
	}
	for _, typ := range events {
		kind, err := invoiceKind(typ)
		if err != nil {
			return err
		}
		if _, err := kind.Record(ctx, tx, tenant, inv.ID, now, invoiceEvent(inv)); err != nil {
			return err
		}
	}
	return nil
}

// finalizeInvoice opens draft inv in memory under number: it draws credits
// from the customer's ledger entries (returning the usage entries to
// write), freezes the document and marks it paid when nothing is due. It
// returns the event types to record.
func finalizeInvoice(inv *Invoice, cus catalog.Customer, st Settings, number string, entries []CreditEntry, now time.Time) ([]CreditEntry, []string, error) {
	inv.Number, inv.Status = number, Open
	due := now.AddDate(0, 0, st.DueDays)
	inv.FinalizedAt, inv.DueAt, inv.UpdatedAt = &now, &due, now
	used, applied := planCredits(inv, entries, inv.Total, now)
	inv.CreditsApplied = applied
	// The document computes the totals once for both: the invoice's
	// stored totals and its frozen document cannot differ.
	d := invoiceDocument(inv, cus, st)
	inv.setTotals(d)
	var err error
	if inv.doc, err = marshalFrozen(d); err != nil {
		return nil, nil, fmt.Errorf("freezing invoice document: %w", err)
	}
	events := []string{"invoice.finalized"}
	if !inv.AmountDue.IsPositive() {
		inv.Status, inv.PaidAt = Paid, &now
		events = append(events, "invoice.paid")
	}
	return used, events, nil
}

// refreshTx re-prices draft inv from current usage inside tx, keeping its
// proration lines.
func (s *Service) refreshTx(ctx context.Context, tx *db.Tx, tb *tenantBatch, tenant string, inv *Invoice, now time.Time) (catalog.Customer, error) {
	subs, err := s.subs.Load(ctx, tx, tenant, []string{inv.SubscriptionID})
	if err != nil {
		return catalog.Customer{}, err
	}
	cus, err := catalog.LoadCustomer(ctx, tx, tenant, inv.CustomerID)
	if err != nil {
		return cus, err
	}
	sub := subs[inv.SubscriptionID]
	if sub == nil {
		return cus, nil // the subscription is gone: keep the draft as it is
	}
	c := planCycle(sub, cus, inv.CycleIndex, nil)
	if err := fetchUsage(ctx, s.usage, tenant, []*cycle{c}); err != nil {
		return cus, err
	}
	var kept []Line
	for _, l := range inv.Lines {
		if l.Kind == LineProration {
			kept = append(kept, l)
		}
	}
	fresh, prorations, err := s.buildInvoice(ctx, tx, tb, c, inv.ID, kept...)
	if err != nil {
		return cus, err
	}
	if fresh == nil {
		// Nothing would be billed now (say, a pause at the instant the
		// period starts): the draft stays as it was, and the prorations
		// stay pending, so the next invoice settles the difference.
		return cus, nil
	}
	if err := s.subs.MarkProrationsInvoiced(ctx, tx, tenant, prorations, now); err != nil {
		return cus, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM invoice_lines WHERE tenant_id = $1 AND invoice_id = $2`, tenant, inv.ID); err != nil {
		return cus, fmt.Errorf("replacing lines of %s: %w", inv.ID, err)
	}
	inv.Lines, inv.planName = fresh.Lines, fresh.planName
	for i := range inv.Lines {
		inv.Lines[i].ID = ""
	}
	if err := insertLines(ctx, tx, tenant, inv); err != nil {
		return cus, err
	}
	inv.computeTotals()
	inv.refreshedAt, inv.UpdatedAt = now, now
	return cus, saveInvoice(ctx, tx, tenant, inv)
}

// draftBatch refreshes drafts in one transaction: with due, the drafts
// whose grace has passed, which are then finalized; otherwise the drafts
// whose last refresh is older than the refresh interval. With only set,
// it takes that draft alone (when it is one of those). It returns the
// drafts it took, also when it failed and nothing was written.
func (s *Service) draftBatch(ctx context.Context, now time.Time, due bool, only string) (refreshed, finalized int, taken []string, err error) {
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var args []any
		arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
		var where, order string
		if due {
			where, order = `finalize_at <= `+arg(db.TimeOf(now)), `finalize_at, id`
		} else {
			where, order = `finalize_at > `+arg(db.TimeOf(now))+` AND refreshed_at <= `+arg(db.TimeOf(now.Add(-s.cfg.RefreshInterval))), `id`
		}
		if only != "" {
			where += ` AND id = ` + arg(only)
		}
		q := `SELECT tenant_id, id FROM invoices WHERE status = 'draft' AND ` + where + ` ORDER BY ` + order + ` LIMIT ` + fmt.Sprint(s.cfg.BatchSize)
		q += tx.LockClause(` FOR UPDATE SKIP LOCKED`)
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("finding drafts: %w", err)
		}
		var todo [][2]string
		for rows.Next() {
			var t, id string
			if err := rows.Scan(&t, &id); err != nil {
				rows.Close()
				return err
			}
			todo = append(todo, [2]string{t, id})
		}
		rows.Close()
		taken = taken[:0]
		for _, ti := range todo {
			taken = append(taken, ti[1])
		}
		tenants := map[string]*tenantBatch{}
		for _, ti := range todo {
			tenant := ti[0]
			tctx := tenantCtx(ctx, tenant)
			tb := tenants[tenant]
			if tb == nil {
				if tb, err = s.loadTenant(tctx, tx, tenant); err != nil {
					return err
				}
				tenants[tenant] = tb
			}
			inv, err := loadInvoice(tctx, tx, tenant, ti[1])
			if err != nil {
				return err
			}
			cus, err := s.refreshTx(tctx, tx, tb, tenant, &inv, now)
			if err != nil {
				return fmt.Errorf("refreshing %s: %w", inv.ID, err)
			}
			refreshed++
			if due && len(inv.Problems) > 0 {
				if err := s.holdDraft(tctx, tx, tenant, &inv, now); err != nil {
					return err
				}
				continue
			}
			if due {
				if err := s.finalizeTx(tctx, tx, tb, tenant, &inv, cus, now); err != nil {
					return fmt.Errorf("finalizing %s: %w", inv.ID, err)
				}
				finalized++
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, taken, err
	}
	return refreshed, finalized, taken, nil
}

// checkProblems refuses to finalize inv while it has problems: an invoice
// whose tax could not be determined must not go out at 0 %.
func checkProblems(inv *Invoice) error {
	if len(inv.Problems) == 0 {
		return nil
	}
	p := inv.Problems[0]
	return abacus.Conflict("invoice_has_problems", "invoice %s cannot be finalized yet: %s", inv.ID, p.Message).WithField("problems", p.Code)
}

// finalizesAt reports whether draft inv is finalized when billed at now:
// its grace has passed and nothing holds it (see InvoiceProblem).
func (inv *Invoice) finalizesAt(now time.Time) bool {
	return !now.Before(inv.FinalizeAt) && len(inv.Problems) == 0
}

// holdDraft keeps due draft inv, which has problems, a draft: it is tried
// again a refresh interval from now (its finalize_at says when) and every
// attempt logs why it waits.
func (s *Service) holdDraft(ctx context.Context, tx *db.Tx, tenant string, inv *Invoice, now time.Time) error {
	inv.FinalizeAt = now.Add(s.cfg.RefreshInterval)
	if _, err := tx.ExecContext(ctx, `UPDATE invoices SET finalize_at = $3 WHERE tenant_id = $1 AND id = $2`,
		tenant, inv.ID, db.TimeOf(inv.FinalizeAt)); err != nil {
		return fmt.Errorf("holding draft %s: %w", inv.ID, err)
	}
	for _, p := range inv.Problems {
		s.log.Warn("draft invoice cannot be finalized yet; retrying later", "tenant", tenant, "invoice", inv.ID,
			"problem", p.Code, "detail", p.Message, "retry_at", inv.FinalizeAt)
	}
	return nil
}

// deferDraft puts off draft id after its refresh or finalization failed
// with cause: it counts as refreshed now, and when it was due to be
// finalized, that moves to a refresh interval from now (its finalize_at
// shows when it is tried again).
func (s *Service) deferDraft(ctx context.Context, now time.Time, id string, cause error) error {
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		var tenant string
		if err := tx.QueryRowContext(ctx, `SELECT tenant_id FROM invoices WHERE id = $1`, id).Scan(&tenant); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invoices SET refreshed_at = $2, finalize_at = CASE WHEN finalize_at <= $2 THEN $3 ELSE finalize_at END WHERE id = $1`,
			id, db.TimeOf(now), db.TimeOf(now.Add(s.cfg.RefreshInterval))); err != nil {
			return err
		}
		s.log.Error("refreshing or finalizing a draft invoice failed; retrying later", "tenant", tenant, "invoice", id, "err", cause)
		return nil
	})
}

// Finalize re-prices draft invoice id from current usage and finalizes it
// now: it gets the next number, credits are applied and its document is
// frozen. Errors: "invoice_not_found", conflict "invalid_invoice_transition"
// when it is not a draft (nothing changes).
func (s *Service) Finalize(ctx context.Context, id string) (Invoice, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Invoice{}, err
	}
	now := s.now()
	var inv Invoice
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if inv, err = lockInvoice(ctx, tx, tenant, id); err != nil {
			return err
		}
		if err := checkInvoiceTransition(&inv, Open); err != nil {
			return err
		}
		tb, err := s.loadTenant(ctx, tx, tenant)
		if err != nil {
			return err
		}
		cus, err := s.refreshTx(ctx, tx, tb, tenant, &inv, now)
		if err != nil {
			return err
		}
		return s.finalizeTx(ctx, tx, tb, tenant, &inv, cus, now)
	})
	if err != nil {
		return Invoice{}, wrap("finalizing invoice "+id, err)
	}
	return s.GetInvoice(ctx, id)
}

// Void voids open or uncollectible invoice id and gives back the credits
// applied to it. Errors: "invoice_not_found", conflict
// "invalid_invoice_transition" for a draft, paid or void invoice.
func (s *Service) Void(ctx context.Context, id string) (Invoice, error) {
	return s.move(ctx, id, Void, "invoice.voided")
}

// MarkPaid records that open or uncollectible invoice id was paid (until
// payments exist). Errors: as Void.
func (s *Service) MarkPaid(ctx context.Context, id string) (Invoice, error) {
	return s.move(ctx, id, Paid, "invoice.paid")
}

// MarkUncollectible records that open invoice id will not be paid.
// Errors: as Void.
func (s *Service) MarkUncollectible(ctx context.Context, id string) (Invoice, error) {
	return s.move(ctx, id, Uncollectible, "invoice.marked_uncollectible")
}

func (s *Service) move(ctx context.Context, id string, to Status, event string) (Invoice, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Invoice{}, err
	}
	now := s.now()
	var inv Invoice
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if inv, err = lockInvoice(ctx, tx, tenant, id); err != nil {
			return err
		}
		if err := checkInvoiceTransition(&inv, to); err != nil {
			return err
		}
		switch to {
		case Void:
			inv.VoidedAt = &now
			if err := restoreCredits(ctx, tx, tenant, &inv, now); err != nil {
				return err
			}
		case Paid:
			inv.PaidAt = &now
		case Uncollectible:
			inv.UncollectibleAt = &now
		}
		inv.Status, inv.UpdatedAt = to, now
		if err := saveInvoice(ctx, tx, tenant, &inv); err != nil {
			return err
		}
		kind, err := invoiceKind(event)
		if err != nil {
			return err
		}
		_, err = kind.Record(ctx, tx, tenant, inv.ID, now, invoiceEvent(&inv))
		return err
	})
	if err != nil {
		return Invoice{}, wrap("changing invoice "+id, err)
	}
	return inv, nil
}
