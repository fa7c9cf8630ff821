package risk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
)

// Event types a tenant may send; custom:<name> types too.
const (
	TypeRegistration = "registration"
	TypeLogin        = "login"
	TypeOrder        = "order"
	TypePayment      = "payment"
	TypeRefund       = "refund"
	TypeDispute      = "dispute"
)

// Limits of the events API.
const (
	MaxBatch = 500 // events in one POST
	// LateWindow is how far in the past an event's time may be: counters
	// keep what they hold this much longer than their window, so a late
	// event is counted exactly.
	LateWindow = time.Hour
	// FutureSkew is how far ahead of the server's clock a time may be.
	FutureSkew = 5 * time.Minute
)

// ShippingAddress is a shipping address as sent.
type ShippingAddress struct {
	Line1      string `json:"line1,omitempty"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	State      string `json:"state,omitempty"`
	Country    string `json:"country,omitempty" doc:"ISO 3166-1 alpha-2"`
}

// EventInput is a risk event as a tenant sends it. Personal identifiers
// (device_id, ip, email, phone, card_fingerprint, shipping_address) are
// hashed before anything is stored.
type EventInput struct {
	Type            string           `json:"type" doc:"registration, login, order, payment, refund, dispute or custom:<name>"`
	Time            *time.Time       `json:"time,omitempty" doc:"when it happened (default: now); at most 1h in the past"`
	CustomerID      string           `json:"customer_id,omitempty" doc:"your own id of the customer; linked to the Abacus customer with this external id when there is one"`
	EndUserID       string           `json:"end_user_id,omitempty"`
	DeviceID        string           `json:"device_id,omitempty"`
	IP              string           `json:"ip,omitempty"`
	Email           string           `json:"email,omitempty"`
	Phone           string           `json:"phone,omitempty"`
	CardFingerprint string           `json:"card_fingerprint,omitempty"`
	CardBIN         string           `json:"card_bin,omitempty"`
	CardLast4       string           `json:"card_last4,omitempty"`
	ShippingAddress *ShippingAddress `json:"shipping_address,omitempty"`
	Amount          string           `json:"amount,omitempty" doc:"decimal string, e.g. \"49.00\"; required for order, payment, refund and dispute"`
	Currency        string           `json:"currency,omitempty" doc:"ISO 4217"`
	Properties      map[string]any   `json:"properties,omitempty" doc:"your own fields; rules read them as event.properties.<name>"`
}

// Event is a risk event as stored and as rules see it (event.*): personal
// identifiers are keyed hashes (h1_…); the e-mail domain, the IP prefix
// and the shipping country are in clear.
type Event struct {
	ID               string         `json:"id"`
	Type             string         `json:"type"`
	Time             time.Time      `json:"time"`
	CustomerID       string         `json:"customer_id,omitempty"`
	AbacusCustomerID string         `json:"abacus_customer_id,omitempty" doc:"the Abacus customer whose external id is customer_id"`
	EndUserID        string         `json:"end_user_id,omitempty"`
	DeviceID         string         `json:"device_id,omitempty"`
	IP               string         `json:"ip,omitempty"`
	IPPrefix         string         `json:"ip_prefix,omitempty"`
	Email            string         `json:"email,omitempty"`
	EmailDomain      string         `json:"email_domain,omitempty"`
	Phone            string         `json:"phone,omitempty"`
	CardFingerprint  string         `json:"card_fingerprint,omitempty"`
	CardBIN          string         `json:"card_bin,omitempty"`
	CardLast4        string         `json:"card_last4,omitempty"`
	ShippingAddress  string         `json:"shipping_address,omitempty"`
	ShippingCountry  string         `json:"shipping_country,omitempty"`
	Amount           string         `json:"amount,omitempty"`
	Currency         string         `json:"currency,omitempty"`
	Properties       map[string]any `json:"properties,omitempty"`
	Source           string         `json:"source" enum:"api,abacus" doc:"api: sent by the tenant; abacus: from Abacus's own events (sign-ups, sign-ins, payments)"`
	amountMicros     int64
	hasAmount        bool
}

// Identifiers events carry, by the name counters, lists and the graph use.
var identifierNames = []string{
	"customer_id", "end_user_id", "device_id", "ip", "ip_prefix", "email", "email_domain", "phone",
	"card_fingerprint", "card_bin", "shipping_address", "shipping_country", "currency", "type",
}

// Identifier returns the value of an identifier or property
// ("properties.plan") of the event, "" when it has none.
func (e *Event) Identifier(name string) string {
	switch name {
	case "customer_id":
		return e.CustomerID
	case "end_user_id":
		return e.EndUserID
	case "device_id":
		return e.DeviceID
	case "ip":
		return e.IP
	case "ip_prefix":
		return e.IPPrefix
	case "email":
		return e.Email
	case "email_domain":
		return e.EmailDomain
	case "phone":
		return e.Phone
	case "card_fingerprint":
		return e.CardFingerprint
	case "card_bin":
		return e.CardBIN
	case "card_last4":
		return e.CardLast4
	case "shipping_address":
		return e.ShippingAddress
	case "shipping_country":
		return e.ShippingCountry
	case "currency":
		return e.Currency
	case "type":
		return e.Type
	}
	if p, ok := strings.CutPrefix(name, "properties."); ok {
		switch v := e.Properties[p].(type) {
		case string:
			return v
		case float64:
			return strconv.FormatFloat(v, 'g', -1, 64)
		case bool:
			return strconv.FormatBool(v)
		}
	}
	return ""
}

// Number returns a numeric field for sums: amount (exactly, in
// millionths) or a numeric property.
func (e *Event) Number(name string) (micros int64, ok bool) {
	if name == "amount" {
		return e.amountMicros, e.hasAmount
	}
	if p, found := strings.CutPrefix(name, "properties."); found {
		switch v := e.Properties[p].(type) {
		case float64:
			return int64(v * 1e6), true
		case string:
			if m, err := parseMicros(v); err == nil {
				return m, true
			}
		}
	}
	return 0, false
}

// parseMicros reads a decimal string with up to 6 decimals as millionths.
func parseMicros(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(whole, "-")
	whole = strings.TrimPrefix(whole, "-")
	if whole == "" || len(whole) > 15 || len(frac) > 6 {
		return 0, fmt.Errorf("not a decimal with at most 15 digits and 6 decimals: %q", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, err
	}
	var f int64
	if frac != "" {
		f, err = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil {
			return 0, err
		}
	}
	m := w*1_000_000 + f
	if neg {
		m = -m
	}
	return m, nil
}

// finish fills the derived fields of a decoded stored event.
func (e *Event) finish() {
	if e.Amount != "" {
		if m, err := parseMicros(e.Amount); err == nil {
			e.amountMicros, e.hasAmount = m, true
		}
	}
}

// putRuleView puts the event as rules read it (event.*) into m: the
// stored fields, with amount as a number (JsonLogic has only doubles) and
// time as RFC 3339.
func (e *Event) putRuleView(m map[string]any) {
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	m["id"] = e.ID
	m["type"] = e.Type
	m["time"] = e.Time.UTC().Format(time.RFC3339Nano)
	put("customer_id", e.CustomerID)
	put("abacus_customer_id", e.AbacusCustomerID)
	put("end_user_id", e.EndUserID)
	put("device_id", e.DeviceID)
	put("ip", e.IP)
	put("ip_prefix", e.IPPrefix)
	put("email", e.Email)
	put("email_domain", e.EmailDomain)
	put("phone", e.Phone)
	put("card_fingerprint", e.CardFingerprint)
	put("card_bin", e.CardBIN)
	put("card_last4", e.CardLast4)
	put("shipping_address", e.ShippingAddress)
	put("shipping_country", e.ShippingCountry)
	put("currency", e.Currency)
	put("source", e.Source)
	if e.hasAmount {
		m["amount"] = float64(e.amountMicros) / 1e6
	}
	if e.Properties != nil {
		m["properties"] = e.Properties
	} else {
		m["properties"] = map[string]any{}
	}
}

// eventFields are the names rules may read under event. (besides
// event.properties.*).
var eventFields = map[string]bool{
	"id": true, "type": true, "time": true, "customer_id": true, "abacus_customer_id": true, "end_user_id": true,
	"device_id": true, "ip": true, "ip_prefix": true, "email": true, "email_domain": true, "phone": true,
	"card_fingerprint": true, "card_bin": true, "card_last4": true, "shipping_address": true,
	"shipping_country": true, "amount": true, "currency": true, "source": true, "properties": true,
}

// parser turns request bodies into events.
type parser struct {
	hash  *hasher
	clock abacus.Clock
}

// Parse validates a body holding one event (an object) or a batch (an
// array) against the built-in schema of each event's type and the
// tenant's own (schemas, by type), and returns the normalized events.
// Every problem of every event is reported (invalid_risk_event, index set
// for a batch); nothing is returned then.
func (p *parser) Parse(tenant string, body []byte, schemas map[string]*jsonschema.Schema) ([]*Event, bool, error) {
	if plainJSON(body) {
		if evs, batch, ok := p.parseFast(tenant, body, func(typ string) bool { return schemas[typ] != nil }); ok {
			return evs, batch, nil
		}
	}
	inst, err := decodeJSON(body)
	if err != nil {
		return nil, false, abacus.Invalid("invalid_risk_event", "the body is not valid JSON: %v", err).WithField("body", "is not valid JSON")
	}
	var items []any
	batch := false
	switch x := inst.(type) {
	case []any:
		batch = true
		items = x
		if len(items) == 0 {
			return nil, true, abacus.Invalid("invalid_risk_event", "the batch is empty").WithField("body", "holds no event")
		}
		if len(items) > MaxBatch {
			return nil, true, abacus.Errorf(abacus.KindTooLarge, "too_many_events", "a batch holds at most %d events; this one holds %d", MaxBatch, len(items)).
				WithField("body", fmt.Sprintf("holds more than %d events", MaxBatch))
		}
	case map[string]any:
		items = []any{x}
	default:
		return nil, false, abacus.Invalid("invalid_risk_event", "send one event (a JSON object) or a batch (an array of them)").WithField("body", "must be an object or an array")
	}
	var v abacus.Validation
	now := p.clock.Now()
	out := make([]*Event, 0, len(items))
	for i, it := range items {
		n := len(v.Fields)
		if m, ok := it.(map[string]any); !ok || !quickValid(m) {
			schemaProblems(builtinSchema, it, batch, i, "", &v)
		}
		if m, ok := it.(map[string]any); ok && len(v.Fields) == n {
			if t, _ := m["type"].(string); schemas[t] != nil {
				schemaProblems(schemas[t], it, batch, i, fmt.Sprintf(" (your schema for %q)", t), &v)
			}
		}
		if len(v.Fields) > n {
			continue
		}
		in, err := inputOf(it.(map[string]any))
		if err != nil {
			addAt(&v, batch, i, "time", err.Error())
			continue
		}
		ev := p.normalize(tenant, &in, now, batch, i, &v)
		if ev != nil {
			out = append(out, ev)
		}
	}
	if err := v.Err("invalid_risk_event"); err != nil {
		return nil, batch, err
	}
	return out, batch, nil
}

// decodeJSON decodes one JSON value, numbers as json.Number (as
// jsonschema.UnmarshalJSON does, about 5× faster).
func decodeJSON(body []byte) (any, error) {
	dec := gojson.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if rest := bytes.TrimSpace(body[min(int(dec.InputOffset()), len(body)):]); len(rest) > 0 {
		return nil, fmt.Errorf("invalid character %q after the top-level value", rest[0])
	}
	return v, nil
}

func addAt(v *abacus.Validation, batch bool, i int, field, msg string) {
	if batch {
		v.AddAt(i, field, "%s", msg)
	} else {
		v.Add(field, "%s", msg)
	}
}

// inputOf reads an event the schema accepted (numbers as json.Number).
func inputOf(m map[string]any) (EventInput, error) {
	str := func(k string) string { s, _ := m[k].(string); return s }
	in := EventInput{Type: str("type"), CustomerID: str("customer_id"), EndUserID: str("end_user_id"), DeviceID: str("device_id"),
		IP: str("ip"), Email: str("email"), Phone: str("phone"), CardFingerprint: str("card_fingerprint"), CardBIN: str("card_bin"),
		CardLast4: str("card_last4"), Amount: str("amount"), Currency: str("currency")}
	if t := str("time"); t != "" {
		at, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return in, fmt.Errorf("is not an RFC 3339 time such as 2026-11-02T09:30:00Z")
		}
		in.Time = &at
	}
	if a, ok := m["shipping_address"].(map[string]any); ok {
		as := func(k string) string { s, _ := a[k].(string); return s }
		in.ShippingAddress = &ShippingAddress{Line1: as("line1"), Line2: as("line2"), City: as("city"), PostalCode: as("postal_code"),
			State: as("state"), Country: as("country")}
	}
	if p, ok := m["properties"].(map[string]any); ok {
		in.Properties = plain(p).(map[string]any)
	}
	return in, nil
}

// plain turns json.Number into float64 throughout a decoded value.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
	}
	return v
}

// normalize checks what the schema cannot and builds the stored event.
func (p *parser) normalize(tenant string, in *EventInput, now time.Time, batch bool, i int, v *abacus.Validation) *Event {
	bad := false
	ev := &Event{ID: abacus.NewID("rev"), Type: in.Type, Time: now.UTC(), CustomerID: in.CustomerID, EndUserID: in.EndUserID,
		CardBIN: in.CardBIN, CardLast4: in.CardLast4, Amount: in.Amount, Currency: in.Currency, Properties: in.Properties, Source: "api"}
	if in.Time != nil {
		t := in.Time.UTC().Truncate(time.Microsecond)
		switch {
		case t.Before(now.Add(-LateWindow)):
			addAt(v, batch, i, "time", fmt.Sprintf("is more than %s in the past; send events as they happen", LateWindow))
			bad = true
		case t.After(now.Add(FutureSkew)):
			addAt(v, batch, i, "time", fmt.Sprintf("is more than %s ahead of the server's clock", FutureSkew))
			bad = true
		}
		ev.Time = t
	}
	if in.Currency != "" {
		if _, err := money.LookupCurrency(in.Currency); err != nil {
			addAt(v, batch, i, "currency", fmt.Sprintf("unknown currency %q; use an ISO 4217 code such as USD or EUR", in.Currency))
			bad = true
		}
	}
	if in.IP != "" {
		addr, prefix, ok := normalizeIP(in.IP)
		if !ok {
			addAt(v, batch, i, "ip", "is not an IP address")
			bad = true
		}
		ev.IP, ev.IPPrefix = p.hash.Hash(tenant, "ip", addr), prefix
	}
	if bad {
		return nil
	}
	if in.Email != "" {
		addr, domain := normalizeEmail(in.Email)
		ev.Email, ev.EmailDomain = p.hash.Hash(tenant, "email", addr), domain
	}
	ev.DeviceID = p.hash.Hash(tenant, "device", strings.TrimSpace(in.DeviceID))
	ev.Phone = p.hash.Hash(tenant, "phone", normalizePhone(in.Phone))
	ev.CardFingerprint = p.hash.Hash(tenant, "card", strings.TrimSpace(in.CardFingerprint))
	if a := in.ShippingAddress; a != nil {
		ev.ShippingCountry = a.Country
		ev.ShippingAddress = p.hash.Hash(tenant, "address", normalizeText(strings.Join([]string{a.Line1, a.Line2, a.PostalCode, a.City, a.State, a.Country}, "|")))
	}
	ev.finish()
	return ev
}
