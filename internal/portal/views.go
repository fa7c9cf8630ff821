package portal

import (
	"context"
	"slices"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// What a portal session reads and changes. Every method takes the
// session (one tenant, one customer) and reads through the owning
// module's service with the session's principal on ctx, filtered by the
// session's customer; an object of another customer answers exactly as a
// made-up id does (not found).

// PortalCustomer is what the portal shows of the customer: billing details
// only (no metadata, subjects or external id: those are the tenant's).
type PortalCustomer struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Email    string          `json:"email,omitempty"`
	Currency string          `json:"currency"`
	Address  catalog.Address `json:"address"`
	TaxID    string          `json:"tax_id,omitempty"`
}

func customerView(c catalog.Customer) PortalCustomer {
	return PortalCustomer{ID: c.ID, Name: c.Name, Email: c.Email, Currency: c.Currency, Address: c.Address, TaxID: c.TaxID}
}

// PortalPlan is a plan the customer is on or may change to.
type PortalPlan struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// PortalSubscription is one of the customer's subscriptions with its plan and
// what the customer may do with it.
type PortalSubscription struct {
	ID            string              `json:"id"`
	Status        subscription.Status `json:"status"`
	Plan          PortalPlan          `json:"plan"`
	CurrentPeriod *PortalPeriodView   `json:"current_period,omitempty"`
	EndsAt        *time.Time          `json:"ends_at,omitempty" doc:"set when it was canceled at the period end"`
	PendingPlan   *PortalPlan         `json:"pending_plan,omitempty" doc:"a change that takes effect at pending_at"`
	PendingAt     *time.Time          `json:"pending_at,omitempty"`
	CanChangePlan bool                `json:"can_change_plan"`
	CanCancel     bool                `json:"can_cancel"`
}

// PortalPeriodView is a billing period.
type PortalPeriodView struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// PortalOverview is the portal's first page: who, how it looks, the plan, what
// may change and the usage against each quota for the period.
type PortalOverview struct {
	Session       PortalSession              `json:"session"`
	Branding      PortalBranding             `json:"branding"`
	ReturnURL     string                     `json:"return_url,omitempty"`
	Customer      PortalCustomer             `json:"customer"`
	Subscriptions []PortalSubscription       `json:"subscriptions"`
	Entitlements  []subscription.Entitlement `json:"entitlements" doc:"each feature with its limit and the usage of the period"`
	Plans         []PortalPlan               `json:"plans" doc:"plans a subscription may change to (empty when the tenant allows no change)"`
	PlanChangeAt  string                     `json:"plan_change_when" enum:"now,period_end"`
	Payments      *struct{}                  `json:"payments,omitempty" doc:"reserved: payment methods and paying an invoice come with the payments module"`
}

// Overview returns the session's overview.
func (s *Service) Overview(ctx context.Context, sess *PortalSession) (PortalOverview, error) {
	st, err := s.loadSettings(ctx, sess.TenantID)
	if err != nil {
		return PortalOverview{}, err
	}
	cus, err := s.catalog.GetCustomer(ctx, sess.CustomerID)
	if err != nil {
		return PortalOverview{}, err
	}
	out := PortalOverview{Session: *sess, Branding: st.Branding, ReturnURL: st.ReturnURL, Customer: customerView(cus),
		Subscriptions: []PortalSubscription{}, Plans: []PortalPlan{}, PlanChangeAt: st.PlanChangeWhen}
	if sess.LinkID != "" {
		if l, err := s.linkOf(ctx, sess); err == nil && l.ReturnURL != "" {
			out.ReturnURL = l.ReturnURL
		}
	}
	if out.Branding.Name == "" {
		out.Branding.Name = "Billing"
	}
	if st.AllowPlanChange {
		for _, key := range st.Plans {
			if p, err := s.catalog.GetPlan(ctx, key); err == nil {
				out.Plans = append(out.Plans, planView(p))
			}
		}
	}
	subs, err := s.subscriptions(ctx, sess)
	if err != nil {
		return PortalOverview{}, err
	}
	plans := map[string]PortalPlan{}
	plan := func(id string) PortalPlan {
		if p, ok := plans[id]; ok {
			return p
		}
		p, err := s.catalog.GetPlan(ctx, id)
		if err != nil {
			return PortalPlan{ID: id}
		}
		plans[id] = planView(p)
		return plans[id]
	}
	for _, sub := range subs {
		if sub.Status == subscription.Ended {
			continue
		}
		v := PortalSubscription{ID: sub.ID, Status: sub.Status, Plan: plan(sub.PlanID), EndsAt: sub.EndsAt, PendingAt: sub.PendingAt}
		if sub.CurrentPeriod != nil {
			v.CurrentPeriod = &PortalPeriodView{Start: sub.CurrentPeriod.Start, End: sub.CurrentPeriod.End}
		}
		if sub.PendingVersionID != "" {
			if pv, err := s.catalog.LoadVersion(ctx, s.catalog.DB(), sess.TenantID, sub.PendingVersionID); err == nil {
				p := plan(pv.PlanID)
				v.PendingPlan = &p
			}
		}
		live := sub.Status == subscription.Active || sub.Status == subscription.Trialing || sub.Status == subscription.PastDue
		v.CanChangePlan = live && st.AllowPlanChange && len(out.Plans) > 0
		v.CanCancel = live && st.AllowCancel
		out.Subscriptions = append(out.Subscriptions, v)
	}
	ents, err := s.subs.Entitlements(ctx, sess.CustomerID)
	if err != nil {
		return PortalOverview{}, err
	}
	if ents == nil {
		ents = []subscription.Entitlement{}
	}
	out.Entitlements = ents
	return out, nil
}

func planView(p catalog.Plan) PortalPlan {
	return PortalPlan{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description}
}

func (s *Service) linkOf(ctx context.Context, sess *PortalSession) (PortalLink, error) {
	return scanLink(s.db.QueryRowContext(ctx, `SELECT `+linkCols+` FROM portal_links WHERE tenant_id = $1 AND id = $2`, sess.TenantID, sess.LinkID))
}

// subscriptions returns every subscription of the session's customer.
func (s *Service) subscriptions(ctx context.Context, sess *PortalSession) ([]subscription.Subscription, error) {
	var out []subscription.Subscription
	pg := catalog.Page{Limit: 100}
	for range 20 { // a customer has a handful; at most 2,000 are read
		l, err := s.subs.List(ctx, sess.CustomerID, pg)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Data...)
		if l.NextCursor == "" {
			break
		}
		pg.Cursor = l.NextCursor
	}
	return out, nil
}

// subscription returns the customer's subscription id, or not found.
func (s *Service) subscription(ctx context.Context, sess *PortalSession, id string) (subscription.Subscription, error) {
	sub, err := s.subs.Get(ctx, id)
	if err != nil {
		return sub, err
	}
	if sub.CustomerID != sess.CustomerID {
		return subscription.Subscription{}, abacus.NotFound("subscription", id)
	}
	return sub, nil
}

// Invoices returns a page of the customer's invoices, newest last, without
// drafts (a draft is the tenant's until it is finalized).
func (s *Service) Invoices(ctx context.Context, sess *PortalSession, limit int, cursor string) (abacus.List[billing.Invoice], error) {
	page, err := s.billing.ListInvoices(ctx, billing.ListFilter{CustomerID: sess.CustomerID, Limit: limit, Cursor: cursor})
	if err != nil {
		return page, err
	}
	page.Data = slices.DeleteFunc(page.Data, func(inv billing.Invoice) bool { return inv.Status == billing.Draft })
	return page, nil
}

// Invoice returns one of the customer's finalized invoices with its lines.
func (s *Service) Invoice(ctx context.Context, sess *PortalSession, id string) (billing.Invoice, error) {
	inv, err := s.billing.GetInvoice(ctx, id)
	if err != nil {
		return inv, err
	}
	if inv.CustomerID != sess.CustomerID || inv.Status == billing.Draft {
		return billing.Invoice{}, abacus.NotFound("invoice", id)
	}
	return inv, nil
}

// InvoiceDocument renders one of the customer's finalized invoices.
func (s *Service) InvoiceDocument(ctx context.Context, sess *PortalSession, id string, f document.Format) ([]byte, string, error) {
	inv, err := s.Invoice(ctx, sess, id)
	if err != nil {
		return nil, "", err
	}
	d, err := s.billing.InvoiceDocument(ctx, inv.ID)
	if err != nil {
		return nil, "", err
	}
	b, err := render(d, f)
	return b, fileName(inv.Number, inv.ID, f), err
}

// CreditNotes returns a page of the customer's credit notes.
func (s *Service) CreditNotes(ctx context.Context, sess *PortalSession, limit int, cursor string) (abacus.List[billing.CreditNote], error) {
	return s.billing.CustomerCreditNotes(ctx, sess.CustomerID, limit, cursor)
}

// CreditNoteDocument renders one of the customer's credit notes.
func (s *Service) CreditNoteDocument(ctx context.Context, sess *PortalSession, id string, f document.Format) ([]byte, string, error) {
	cn, err := s.billing.GetCreditNote(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if cn.CustomerID != sess.CustomerID {
		return nil, "", abacus.NotFound("credit_note", id)
	}
	d, err := s.billing.CreditNoteDocument(ctx, cn.ID)
	if err != nil {
		return nil, "", err
	}
	b, err := render(d, f)
	return b, fileName(cn.Number, cn.ID, f), err
}

func render(d *document.Document, f document.Format) ([]byte, error) {
	b, err := document.Render(d, f)
	if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindInvalid {
		// the stored document fails the format's rules: the tenant's
		// settings, not the customer's request
		return nil, abacus.Errorf(abacus.KindUnprocessable, "document_unavailable",
			"this document cannot be made as %s; the PDF is available, or ask the seller", f)
	}
	return b, err
}

func fileName(number, id string, f document.Format) string {
	name := number
	if name == "" {
		name = id
	}
	ext := map[document.Format]string{document.FormatPDF: ".pdf", document.FormatUBL: ".xml"}[f]
	out := make([]rune, 0, len(name))
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			out = append(out, r)
		} else {
			out = append(out, '-')
		}
	}
	return string(out) + ext
}

// PortalDetailsInput changes the customer's billing details; nil fields stay.
type PortalDetailsInput struct {
	Name    *string          `json:"name,omitempty" maxLength:"255"`
	Email   *string          `json:"email,omitempty" maxLength:"320"`
	Address *catalog.Address `json:"address,omitempty"`
	TaxID   *string          `json:"tax_id,omitempty" maxLength:"64" doc:"VAT or other tax id; checked as the dashboard's"`
}

// UpdateDetails changes the customer's billing details through the
// catalog (its validation and field errors).
func (s *Service) UpdateDetails(ctx context.Context, sess *PortalSession, in PortalDetailsInput) (PortalCustomer, error) {
	c, err := s.catalog.UpdateCustomer(ctx, sess.CustomerID, catalog.CustomerPatch{Name: in.Name, Email: in.Email, Address: in.Address, TaxID: in.TaxID})
	if err != nil {
		return PortalCustomer{}, err
	}
	return customerView(c), nil
}

// PortalChangePlanInput names the plan to change to.
type PortalChangePlanInput struct {
	Plan string `json:"plan" doc:"key of one of the overview's plans"`
}

// ChangePlan changes the customer's subscription to one of the plans the
// tenant offers, when it allows changes (now or at the period end, as its
// settings say). Errors: plan_change_not_allowed (403), the field error
// plan, subscription_not_found, and those of subscription.ChangePlan.
func (s *Service) ChangePlan(ctx context.Context, sess *PortalSession, subID string, in PortalChangePlanInput) (PortalSubscription, error) {
	st, err := s.loadSettings(ctx, sess.TenantID)
	if err != nil {
		return PortalSubscription{}, err
	}
	if _, err := s.subscription(ctx, sess, subID); err != nil {
		return PortalSubscription{}, err
	}
	if !st.AllowPlanChange {
		return PortalSubscription{}, abacus.Errorf(abacus.KindForbidden, "plan_change_not_allowed", "plan changes are not offered here; contact the seller")
	}
	p, err := s.catalog.GetPlan(ctx, in.Plan)
	if err != nil || !slices.Contains(st.Plans, p.Key) {
		return PortalSubscription{}, abacus.Invalid("invalid_plan", "plan %q is not offered", in.Plan).WithField("plan", "is not one of the plans offered")
	}
	when := subscription.When(st.PlanChangeWhen)
	if _, err := s.subs.ChangePlan(ctx, subID, subscription.ChangePlanInput{PlanID: p.ID, When: when}); err != nil {
		return PortalSubscription{}, err
	}
	return s.subscriptionView(ctx, sess, subID)
}

// Cancel cancels the customer's subscription at the end of its period,
// when the tenant allows it. Errors: cancel_not_allowed (403),
// subscription_not_found, invalid_transition.
func (s *Service) Cancel(ctx context.Context, sess *PortalSession, subID string) (PortalSubscription, error) {
	st, err := s.loadSettings(ctx, sess.TenantID)
	if err != nil {
		return PortalSubscription{}, err
	}
	if _, err := s.subscription(ctx, sess, subID); err != nil {
		return PortalSubscription{}, err
	}
	if !st.AllowCancel {
		return PortalSubscription{}, abacus.Errorf(abacus.KindForbidden, "cancel_not_allowed", "cancelling is not offered here; contact the seller")
	}
	if _, err := s.subs.Cancel(ctx, subID, subscription.CancelInput{When: subscription.PeriodEnd}); err != nil {
		return PortalSubscription{}, err
	}
	return s.subscriptionView(ctx, sess, subID)
}

func (s *Service) subscriptionView(ctx context.Context, sess *PortalSession, id string) (PortalSubscription, error) {
	ov, err := s.Overview(ctx, sess)
	if err != nil {
		return PortalSubscription{}, err
	}
	for _, v := range ov.Subscriptions {
		if v.ID == id {
			return v, nil
		}
	}
	sub, err := s.subscription(ctx, sess, id)
	if err != nil {
		return PortalSubscription{}, err
	}
	return PortalSubscription{ID: sub.ID, Status: sub.Status, Plan: PortalPlan{ID: sub.PlanID}, EndsAt: sub.EndsAt}, nil
}
