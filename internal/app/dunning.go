package app

import (
	"context"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/payments/dunning"
	"github.com/abacusbilling/abacus/internal/service"
)

// newDunning builds the dunning service over billing and subscriptions,
// and makes the subscription module read the features a suspension
// closes from its settings.
func newDunning(a *App, m *modules) *dunning.Service {
	d := dunning.New(a.DB, a.Clock, a.Log, dunningBilling{m.billing}, m.subs)
	m.subs.UseSuspendable(d.Suspendable)
	d.UseCollector(a.collectForDunning)
	d.UseCollectionMethods(a.collectionMethod)
	d.UsePayLinks(func(ctx context.Context, _, invoice string) (string, error) {
		link, _, err := a.payLink(ctx, invoice)
		return link, err
	})
	return d
}

// collectionMethod is how a customer pays, for dunning: send_invoice
// invoices are dunned from their due date.
func (a *App) collectionMethod(ctx context.Context, _, customer string) (string, error) {
	svc, err := a.payments()
	if err != nil {
		return "", err
	}
	cb, err := svc.GetCustomerBilling(ctx, customer)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return payments.ChargeAutomatically, nil
	}
	return cb.CollectionMethod, err
}

// collectForDunning charges a dunning retry through the payments core
// (payments.Service.Collect: idempotent per invoice and attempt). An
// invoice no longer payable is left to the events that say why (paid,
// voided); a tenant without a gateway fails softly, so the schedule goes
// on to its final action.
func (a *App) collectForDunning(ctx context.Context, _, invoice string, attempt int) (dunning.Attempt, error) {
	svc, err := a.payments()
	if err != nil {
		return dunning.Attempt{}, err
	}
	p, err := svc.Collect(ctx, invoice, attempt)
	if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindConflict {
		if e.Code == "invoice_not_payable" {
			return dunning.Attempt{Outcome: dunning.Pending}, nil
		}
		return dunning.Attempt{Outcome: dunning.Failed, DeclineCode: e.Code}, nil
	}
	if err != nil {
		return dunning.Attempt{}, err
	}
	switch p.Status {
	case payments.StatusSucceeded:
		return dunning.Attempt{Outcome: dunning.Succeeded}, nil
	case payments.StatusFailed, payments.StatusCanceled:
		return dunning.Attempt{Outcome: dunning.Failed, DeclineCode: p.DeclineCode, Hard: p.DeclineKind == payments.DeclineHard}, nil
	}
	return dunning.Attempt{Outcome: dunning.Pending}, nil
}

// dunningRole runs the dunning passes (every 10 s) and its consumer of
// domain events (payment failures and successes, paid or closed invoices,
// disputes, new payment methods).
func dunningRole(a *App) service.Service {
	d := a.modules().dunning
	d.RegisterMetrics(a.Metrics)
	return service.NewFunc("dunning", func(ctx context.Context) error {
		var wg sync.WaitGroup
		wg.Go(func() { _ = d.Consume(ctx, a.Bus) })
		defer wg.Wait()
		return d.Run(ctx, 10*time.Second)
	})
}

// dunningBilling is billing as dunning sees it.
type dunningBilling struct{ b *billing.Service }

func (d dunningBilling) Invoice(ctx context.Context, _, id string) (dunning.Invoice, error) {
	inv, err := d.b.GetInvoice(ctx, id)
	if err != nil {
		return dunning.Invoice{}, err
	}
	return dunning.Invoice{ID: inv.ID, Number: inv.Number, CustomerID: inv.CustomerID, SubscriptionID: inv.SubscriptionID,
		Currency: inv.Currency, AmountDue: inv.AmountDue, Status: string(inv.Status), DueAt: inv.DueAt}, nil
}

// PaidThrough is the latest service end of the subscription's paid
// invoices: the prepaid period a suspension keeps open.
func (d dunningBilling) PaidThrough(ctx context.Context, _, sub string) (*time.Time, error) {
	var out *time.Time
	cursor := ""
	for {
		page, err := d.b.ListInvoices(ctx, billing.ListFilter{SubscriptionID: sub, Status: billing.Paid, Limit: 100, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, inv := range page.Data {
			if inv.ServiceEnd != nil && (out == nil || inv.ServiceEnd.After(*out)) {
				end := *inv.ServiceEnd
				out = &end
			}
		}
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

func (d dunningBilling) MarkUncollectible(ctx context.Context, _, id string) error {
	_, err := d.b.MarkUncollectible(ctx, id)
	return err
}
