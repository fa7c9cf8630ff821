package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	gojson "github.com/goccy/go-json"
	stripego "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/payments"
)

// Tolerance is how old a signed webhook may be (Stripe's default).
const Tolerance = 5 * time.Minute

// maxBody bounds a webhook body (Stripe's events are far smaller).
const maxBody = 1 << 20

// Received is the answer to a webhook Abacus took.
type Received struct {
	Received bool `json:"received"`
	Known    bool `json:"known" doc:"false for an event about an object Abacus does not know: acknowledged, nothing changed"`
}

// RegisterRoutes adds POST /webhooks/stripe/{tenant_id}, where each
// tenant points its Stripe account's webhooks.
func RegisterRoutes(s *httpapi.Server, svc *payments.Service) {
	h := &handler{svc: svc, log: s.Logger()}
	s.OperationExample(http.MethodPost, "/webhooks/stripe/{tenant_id}", nil, Received{Received: true, Known: true})
	httpapi.HandleOp[Received](s, huma.Operation{OperationID: "receive-stripe-webhook", Method: http.MethodPost, Path: "/webhooks/stripe/{tenant_id}",
		Summary: "Receive a Stripe webhook", Tags: []string{"Payments"}, Errors: []int{http.StatusBadRequest},
		Description: "Stripe calls it with events of the tenant's account. The Stripe-Signature header is verified with the tenant's webhook " +
			"secret (5 minutes tolerance); a bad or missing signature, a stale timestamp, an unknown tenant or a malformed body is a 400 " +
			"and changes nothing. Each event is handled once by its id, in any order; events about objects Abacus does not know are " +
			"acknowledged (known: false)."}, httpapi.ScopePublic, h)
}

type handler struct {
	svc *payments.Service
	log *slog.Logger
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant_id")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		httpapi.WriteError(w, r, h.log, abacus.Errorf(abacus.KindTooLarge, "body_too_large", "the webhook body is above %d bytes", maxBody))
		return
	}
	secret, ok, err := h.svc.WebhookSecret(r.Context(), tenant, payments.ProviderStripe)
	if err != nil {
		httpapi.WriteError(w, r, h.log, err)
		return
	}
	if !ok {
		httpapi.WriteError(w, r, h.log, abacus.Invalid("unknown_tenant", "no tenant with Stripe configured has id %q", tenant).
			WithField("path.tenant_id", "no tenant with Stripe configured"))
		return
	}
	if err := webhook.ValidatePayloadWithTolerance(body, r.Header.Get("Stripe-Signature"), secret, Tolerance); err != nil {
		httpapi.WriteError(w, r, h.log, signatureProblem(err))
		return
	}
	// Only what translate reads is decoded (stripe-go's Event also decodes
	// the object into a generic map: most of a webhook's CPU).
	var ev wireEvent
	if err := gojson.Unmarshal(body, &ev); err != nil {
		httpapi.WriteError(w, r, h.log, abacus.Invalid("invalid_event", "the event cannot be read: %v", err))
		return
	}
	ge, err := h.translate(r.Context(), tenant, ev)
	if err != nil {
		httpapi.WriteError(w, r, h.log, abacus.Invalid("invalid_event", "the %s event's object cannot be read: %v", ev.Type, err))
		return
	}
	known, err := h.svc.HandleGatewayEvent(r.Context(), tenant, payments.ProviderStripe, ge)
	if err != nil {
		httpapi.WriteError(w, r, h.log, err)
		return
	}
	b, _ := json.Marshal(Received{Received: true, Known: known})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func signatureProblem(err error) error {
	switch {
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader):
		return abacus.Invalid("signature_missing", "the Stripe-Signature header is missing or malformed").
			WithField("header.Stripe-Signature", "missing or malformed")
	case errors.Is(err, webhook.ErrTooOld):
		return abacus.Invalid("signature_expired", "the webhook's timestamp is older than %s", Tolerance).
			WithField("header.Stripe-Signature", "timestamp outside the tolerance")
	case errors.Is(err, webhook.ErrNoValidSignature):
		return abacus.Invalid("signature_invalid", "no signature matches the tenant's webhook secret").
			WithField("header.Stripe-Signature", "does not match")
	}
	return abacus.Invalid("invalid_event", "the event cannot be read: %v", err)
}

// wireEvent is the part of a Stripe event translate reads.
type wireEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data *struct {
		Object gojson.RawMessage `json:"object"`
	} `json:"data"`
}

// wireIntent is the part of a PaymentIntent the ledger reads: the most
// frequent object, decoded without stripe-go's full type.
type wireIntent struct {
	ID               string            `json:"id"`
	Amount           int64             `json:"amount"`
	Currency         string            `json:"currency"`
	Status           string            `json:"status"`
	Metadata         map[string]string `json:"metadata"`
	LastPaymentError *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Message     string `json:"message"`
	} `json:"last_payment_error"`
}

func (w wireIntent) intent() *stripego.PaymentIntent {
	pi := &stripego.PaymentIntent{ID: w.ID, Amount: w.Amount, Currency: stripego.Currency(w.Currency),
		Status: stripego.PaymentIntentStatus(w.Status), Metadata: w.Metadata}
	if e := w.LastPaymentError; e != nil {
		pi.LastPaymentError = &stripego.Error{Code: stripego.ErrorCode(e.Code), DeclineCode: stripego.DeclineCode(e.DeclineCode), Msg: e.Message}
	}
	return pi
}

// translate turns a verified Stripe event into the ledger's terms.
// Types Abacus does not act on come back with no part set.
func (h *handler) translate(ctx context.Context, tenant string, ev wireEvent) (payments.GatewayEvent, error) {
	out := payments.GatewayEvent{ID: ev.ID, Type: ev.Type}
	if ev.ID == "" || ev.Data == nil || len(ev.Data.Object) == 0 {
		return out, errors.New("the event has no id or data")
	}
	raw := []byte(ev.Data.Object)
	switch t := ev.Type; {
	case strings.HasPrefix(t, "payment_intent."):
		var status payments.Status
		switch t {
		case "payment_intent.succeeded":
			status = payments.StatusSucceeded
		case "payment_intent.payment_failed":
			status = payments.StatusFailed
		case "payment_intent.canceled":
			status = payments.StatusCanceled
		case "payment_intent.processing":
			status = payments.StatusProcessing
		default:
			return out, nil
		}
		var w wireIntent
		if err := gojson.Unmarshal(raw, &w); err != nil || w.ID == "" {
			return out, fmt.Errorf("payment intent: %v", err)
		}
		u := payments.PaymentUpdate{GatewayPayment: paymentOf(w.intent(), status), InvoiceID: w.Metadata[MetaInvoice], TenantID: w.Metadata[MetaTenant]}
		u.Attempt, _ = strconv.Atoi(w.Metadata[MetaAttempt])
		out.Payment = &u
	case t == "charge.refunded":
		var ch stripego.Charge
		if err := json.Unmarshal(raw, &ch); err != nil || ch.ID == "" {
			return out, fmt.Errorf("charge: %v", err)
		}
		if ch.PaymentIntent != nil {
			out.Refund = &payments.RefundUpdate{PaymentReference: ch.PaymentIntent.ID, AmountRefunded: ch.AmountRefunded,
				Currency: strings.ToUpper(string(ch.Currency))}
		}
	case t == "charge.dispute.created", t == "charge.dispute.updated", t == "charge.dispute.closed",
		t == "charge.dispute.funds_withdrawn", t == "charge.dispute.funds_reinstated":
		var d stripego.Dispute
		if err := json.Unmarshal(raw, &d); err != nil || d.ID == "" {
			return out, fmt.Errorf("dispute: %v", err)
		}
		out.Dispute = disputeOf(&d)
	case t == "radar.early_fraud_warning.created" || t == "radar.early_fraud_warning.updated":
		var w stripego.RadarEarlyFraudWarning
		if err := json.Unmarshal(raw, &w); err != nil || w.ID == "" {
			return out, fmt.Errorf("early fraud warning: %v", err)
		}
		if w.PaymentIntent != nil {
			out.Dispute = &payments.DisputeUpdate{Reference: w.ID, PaymentReference: w.PaymentIntent.ID, Kind: payments.DisputeEarlyFraudWarning,
				Status: map[bool]string{true: "actionable", false: "not_actionable"}[w.Actionable], Reason: string(w.FraudType)}
		}
	case t == "setup_intent.succeeded":
		var si stripego.SetupIntent
		if err := json.Unmarshal(raw, &si); err != nil || si.ID == "" {
			return out, fmt.Errorf("setup intent: %v", err)
		}
		if si.Metadata[MetaTenant] != tenant || si.Metadata[MetaCustomer] == "" || si.PaymentMethod == nil {
			return out, nil
		}
		m := &payments.MethodSetup{CustomerID: si.Metadata[MetaCustomer], Reference: si.PaymentMethod.ID}
		if si.Customer != nil {
			m.CustomerRef = si.Customer.ID
		}
		pm := si.PaymentMethod
		if pm.Card == nil {
			pm = h.method(ctx, tenant, pm.ID)
		}
		if pm != nil && pm.Card != nil {
			m.Brand, m.Last4, m.ExpMonth, m.ExpYear = string(pm.Card.Brand), pm.Card.Last4, int(pm.Card.ExpMonth), int(pm.Card.ExpYear)
		}
		out.MethodSetup = m
	case t == "payment_method.detached":
		var pm stripego.PaymentMethod
		if err := json.Unmarshal(raw, &pm); err != nil || pm.ID == "" {
			return out, fmt.Errorf("payment method: %v", err)
		}
		out.MethodDetached = pm.ID
	}
	return out, nil
}

// method reads a payment method's card from Stripe; nil when it cannot
// (the method is then recorded without its card details).
func (h *handler) method(ctx context.Context, tenant, id string) *stripego.PaymentMethod {
	gw, ok, err := h.svc.GatewayFor(ctx, tenant, payments.ProviderStripe)
	g, isStripe := gw.(*Gateway)
	if err != nil || !ok || !isStripe {
		return nil
	}
	pm, err := g.c.V1PaymentMethods.Retrieve(ctx, id, nil)
	if err != nil {
		h.log.Info("reading a payment method's card from Stripe failed", "tenant", tenant, "payment_method", id, "err", err)
		return nil
	}
	return pm
}

func disputeOf(d *stripego.Dispute) *payments.DisputeUpdate {
	u := &payments.DisputeUpdate{Reference: d.ID, Kind: payments.DisputeChargeback, Status: string(d.Status), Amount: d.Amount,
		Currency: strings.ToUpper(string(d.Currency)), Reason: string(d.Reason)}
	switch {
	case d.PaymentIntent != nil:
		u.PaymentReference = d.PaymentIntent.ID
	case d.Charge != nil && d.Charge.PaymentIntent != nil:
		u.PaymentReference = d.Charge.PaymentIntent.ID
	}
	switch d.Status {
	case stripego.DisputeStatusWarningNeedsResponse, stripego.DisputeStatusWarningUnderReview:
		u.Kind = payments.DisputeInquiry
	case stripego.DisputeStatusWarningClosed:
		u.Kind, u.Closed = payments.DisputeInquiry, true
	case stripego.DisputeStatusWon, stripego.DisputeStatusPrevented:
		u.Closed, u.Outcome = true, "won"
	case stripego.DisputeStatusLost:
		u.Closed, u.Outcome = true, "lost"
	}
	return u
}
