package risk

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// Abacus's own domain events feed the risk module (the durable consumer
// FeedConsumer on outbox.Stream), each becoming a risk event with source
// "abacus", decided and stored like one a tenant sent:
//
//	end_user.signed_up        → registration (end_user_id, email)
//	end_user.signed_in        → login, properties.status succeeded (end_user_id, ip, device_id = the session's device name and user agent, properties.new_device)
//	end_user.sign_in_failed   → login, properties.status failed (end_user_id, ip, properties.reason)
//	end_user.password_changed → custom:password_changed (end_user_id)
//	payment.succeeded|failed  → payment, properties.status succeeded|failed (customer_id, amount, currency, properties.decline_code)
//	payment.refunded          → refund (amount_refunded)
//	dispute.created|closed    → dispute, properties.status opened, or won|lost when closed
//
// The payments events are read by their JSON Schema (the payments module
// is not imported). A payment's customer is named as tenants name theirs:
// by its external id when it has one, else by its Abacus id. The risk
// event's id is the domain event's (rev_<ulid>), so a redelivered event
// is stored once.
const FeedConsumer = "risk"

// feedTypes are the domain events the feed takes.
var feedTypes = []string{
	"end_user.signed_up", "end_user.signed_in", "end_user.sign_in_failed", "end_user.password_changed",
	"payment.succeeded", "payment.failed", "payment.refunded", "dispute.created", "dispute.closed",
}

// DomainEvent is a domain event as the feed takes it in.
type DomainEvent struct {
	ID, Tenant, Type string
	At               time.Time
	Data             []byte
}

type feedPayload struct {
	EndUserID      string `json:"end_user_id"`
	Email          string `json:"email"`
	IP             string `json:"ip"`
	DeviceName     string `json:"device_name"`
	UserAgent      string `json:"user_agent"`
	Method         string `json:"method"`
	NewDevice      bool   `json:"new_device"`
	Reason         string `json:"reason"`
	CustomerID     string `json:"customer_id"`
	PaymentID      string `json:"payment_id"`
	DisputeID      string `json:"dispute_id"`
	Amount         string `json:"amount"`
	AmountRefunded string `json:"amount_refunded"`
	Currency       string `json:"currency"`
	DeclineCode    string `json:"decline_code"`
	Outcome        string `json:"outcome"`
	Kind           string `json:"kind"`
}

// fromDomain maps a domain event to a risk event input; ok is false for
// an event the feed does not take (or cannot read).
func (s *Service) fromDomain(ctx context.Context, de DomainEvent) (EventInput, bool, error) {
	var p feedPayload
	if err := json.Unmarshal(de.Data, &p); err != nil {
		return EventInput{}, false, nil
	}
	at := de.At
	if at.IsZero() {
		at = s.clock.Now()
	}
	in := EventInput{Time: &at, EndUserID: p.EndUserID, Properties: map[string]any{"abacus_event": de.Type}}
	switch de.Type {
	case "end_user.signed_up":
		in.Type, in.Email = TypeRegistration, p.Email
	case "end_user.signed_in":
		in.Type, in.IP = TypeLogin, p.IP
		if p.DeviceName != "" || p.UserAgent != "" {
			in.DeviceID = p.DeviceName + "|" + p.UserAgent
		}
		in.Properties["status"], in.Properties["method"], in.Properties["new_device"] = "succeeded", p.Method, p.NewDevice
	case "end_user.sign_in_failed":
		in.Type, in.IP = TypeLogin, p.IP
		in.Properties["status"], in.Properties["reason"] = "failed", p.Reason
	case "end_user.password_changed":
		in.Type = "custom:password_changed"
	case "payment.succeeded", "payment.failed", "payment.refunded":
		in.Type, in.Amount, in.Currency = TypePayment, p.Amount, p.Currency
		in.Properties["payment_id"] = p.PaymentID
		switch de.Type {
		case "payment.succeeded":
			in.Properties["status"] = "succeeded"
		case "payment.failed":
			in.Properties["status"] = "failed"
			if p.DeclineCode != "" {
				in.Properties["decline_code"] = p.DeclineCode
			}
		default:
			in.Type, in.Amount = TypeRefund, p.AmountRefunded
		}
	case "dispute.created", "dispute.closed":
		in.Type, in.Amount, in.Currency = TypeDispute, p.Amount, p.Currency
		in.Properties["dispute_id"], in.Properties["payment_id"] = p.DisputeID, p.PaymentID
		in.Properties["status"] = "opened"
		if de.Type == "dispute.closed" && (p.Outcome == "won" || p.Outcome == "lost") {
			in.Properties["status"] = p.Outcome
		}
		if p.Kind != "" {
			in.Properties["kind"] = p.Kind
		}
	default:
		return in, false, nil
	}
	if p.CustomerID != "" {
		in.CustomerID = p.CustomerID
		if s.linker != nil {
			ext, err := s.linker.l.ExternalIDOf(ctx, de.Tenant, p.CustomerID)
			if err != nil {
				return in, false, err
			}
			if ext != "" {
				in.CustomerID = ext
			}
		}
	}
	if in.CustomerID == "" && in.EndUserID == "" {
		return in, false, nil
	}
	return in, true, nil
}

// Feed decides and stores domain events as risk events, once each
// (events already stored are skipped). An event the built-in schema
// refuses is logged and skipped: Abacus's own data never blocks the feed.
func (s *Service) Feed(ctx context.Context, des []DomainEvent) error {
	// A redelivered event may still be in the journal only.
	if err := s.Flush(ctx); err != nil {
		return err
	}
	for _, de := range des {
		ctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: de.Tenant, Kind: "system", Scopes: []abacus.Scope{abacus.ScopeWrite}})
		in, ok, err := s.fromDomain(ctx, de)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		_, suffix, _ := strings.Cut(de.ID, "_")
		id := "rev_" + strings.ToLower(suffix)
		exists, err := eventStored(ctx, s.db, de.Tenant, id)
		if err != nil {
			return err
		}
		if exists {
			continue // a redelivery: the rest of the batch still counts
		}
		s.decideMu.RLock()
		held := true
		unlock := func() {
			if held {
				held = false
				s.decideMu.RUnlock()
			}
		}
		tc, err := s.config(ctx, de.Tenant)
		if err != nil {
			unlock()
			return err
		}
		body, _ := json.Marshal(in)
		evs, _, err := s.parse.Parse(de.Tenant, body, nil)
		if err != nil {
			unlock()
			// Not every past event fits the late window or the schema.
			s.log.Warn("risk: a domain event does not make a valid risk event; skipped", "event_id", de.ID, "type", de.Type, "err", err)
			continue
		}
		evs[0].ID, evs[0].Source = id, "abacus"
		if evs[0].CustomerID != "" && s.linker != nil {
			if evs[0].AbacusCustomerID, err = s.linker.lookup(ctx, de.Tenant, evs[0].CustomerID); err != nil {
				unlock()
				return err
			}
		}
		_, _, err = s.decideEvents(ctx, tc, evs, true, false, unlock)
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// RunFeed consumes Abacus's domain events into risk events until ctx
// ends (the durable consumer is shared by the nodes: each event is
// taken by one), acking each batch once stored. A new consumer starts at
// the events published from now on.
func (s *Service) RunFeed(ctx context.Context, bus *natsbus.Bus) error {
	return outbox.ConsumeBatches(ctx, bus, outbox.Subscription{
		Durable: FeedConsumer, Types: feedTypes, Since: time.Now(), Batch: 200, AckWait: time.Minute, Log: s.log,
	}, func(ctx context.Context, events []outbox.Event) error {
		des := make([]DomainEvent, len(events))
		for i, e := range events {
			des[i] = DomainEvent{ID: e.ID, Tenant: e.TenantID, Type: e.Type, At: e.CreatedAt, Data: e.Payload}
		}
		return s.Feed(ctx, des)
	})
}
