package risk

import (
	"bytes"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"github.com/abacusbilling/abacus"
)

// The usual body of POST /risk/events is one valid event. It is read in
// one typed decode (wireEvent) and checked field by field (quickString),
// without building a generic JSON value or walking the JSON Schema; a
// body that might be refused, or that a tenant schema covers, takes the
// schema path, which names every problem.

// wireEvent is an event as sent, for the typed decode.
type wireEvent struct {
	Type            string           `json:"type"`
	Time            string           `json:"time"`
	CustomerID      string           `json:"customer_id"`
	EndUserID       string           `json:"end_user_id"`
	DeviceID        string           `json:"device_id"`
	IP              string           `json:"ip"`
	Email           string           `json:"email"`
	Phone           string           `json:"phone"`
	CardFingerprint string           `json:"card_fingerprint"`
	CardBIN         string           `json:"card_bin"`
	CardLast4       string           `json:"card_last4"`
	ShippingAddress *ShippingAddress `json:"shipping_address"`
	Amount          string           `json:"amount"`
	Currency        string           `json:"currency"`
	Properties      map[string]any   `json:"properties"`
}

// rejectUnknownFields is the Decoder's DisallowUnknownFields for
// Unmarshal, which go-json offers no option for: the same flag
// (internal/decoder.DisallowUnknownFieldsOption, 1<<4 in v0.12.0; should
// it move, TestTypedDecodeLeavesDoubtToTheSchema fails on its unknown
// fields).
func rejectUnknownFields(o *gojson.DecodeOption) { o.Flags |= 1 << 4 }

// maxPlainKeys bounds the keys plainJSON compares per body.
const maxPlainKeys = 128

// plainJSON reports whether body is certainly free of what the typed
// decode would read differently from the schema path: it is valid UTF-8,
// no object has a key twice, no key has an escape, an upper-case letter or
// a byte beyond ASCII (Go's decoders match field names regardless of case,
// with Unicode folding), and it holds no
// null and no empty string (a typed field cannot tell them from an absent
// one). False means only "not sure": the schema path decides. Syntax is
// left to the decoder.
func plainJSON(body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	var keys [maxPlainKeys][]byte
	var starts [16]int // per open container: where its keys start in keys
	n, depth := 0, -1
	inObject := [16]bool{}
	wantKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '{', '[':
			if depth++; depth == len(starts) {
				return false
			}
			starts[depth], inObject[depth], wantKey = n, c == '{', c == '{'
		case '}', ']':
			if depth < 0 {
				return false
			}
			n, depth, wantKey = starts[depth], depth-1, false
		case ',':
			wantKey = depth >= 0 && inObject[depth]
		case 'n':
			return false // null (a string's n is skipped with it)
		case '"':
			j := i + 1
			for j < len(body) && body[j] != '"' {
				if body[j] == '\\' {
					if wantKey {
						return false
					}
					j++
				}
				j++
			}
			if j >= len(body) || j == i+1 {
				return false
			}
			if wantKey {
				key := body[i+1 : j]
				if n == maxPlainKeys || bytes.ContainsFunc(key, func(r rune) bool { return 'A' <= r && r <= 'Z' || r >= utf8.RuneSelf }) {
					return false
				}
				for _, k := range keys[starts[depth]:n] {
					if bytes.Equal(k, key) {
						return false
					}
				}
				keys[n], n, wantKey = key, n+1, false
			}
			i = j
		}
	}
	return true
}

// parseFast reads a plain body (plainJSON) of events that certainly pass
// the built-in schema and have no tenant schema; ok=false sends the body
// to the schema path.
func (p *parser) parseFast(tenant string, body []byte, hasSchema func(typ string) bool) (evs []*Event, batch, ok bool) {
	var ws []wireEvent
	var into any
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && b[0] == '[' {
		batch, into = true, &ws
	} else {
		ws = make([]wireEvent, 1)
		into = &ws[0]
	}
	// Unmarshal decodes from a pooled buffer; a Decoder made per body
	// cost a stream and its 512-byte buffer. It refuses trailing data.
	if gojson.UnmarshalWithOption(body, into, rejectUnknownFields) != nil || len(ws) == 0 || len(ws) > MaxBatch {
		return nil, batch, false
	}
	now := p.clock.Now()
	evs = make([]*Event, 0, len(ws))
	for i := range ws {
		w := &ws[i]
		in, ok := w.input()
		if !ok || hasSchema(w.Type) {
			return nil, batch, false
		}
		var v abacus.Validation
		ev := p.normalize(tenant, &in, now, batch, i, &v)
		if ev == nil || len(v.Fields) > 0 {
			return nil, batch, false
		}
		evs = append(evs, ev)
	}
	return evs, batch, true
}

// input checks w as quickValid checks a decoded event and returns it as
// an EventInput; ok=false when the schema must decide.
func (w *wireEvent) input() (EventInput, bool) {
	in := EventInput{Type: w.Type, CustomerID: w.CustomerID, EndUserID: w.EndUserID, DeviceID: w.DeviceID, IP: w.IP, Email: w.Email,
		Phone: w.Phone, CardFingerprint: w.CardFingerprint, CardBIN: w.CardBIN, CardLast4: w.CardLast4, ShippingAddress: w.ShippingAddress,
		Amount: w.Amount, Currency: w.Currency, Properties: w.Properties}
	if !quickType(w.Type) || in.CustomerID == "" && in.EndUserID == "" || moneyType(w.Type) && (in.Amount == "" || in.Currency == "") {
		return in, false
	}
	for _, f := range [...]struct{ k, v string }{{"time", w.Time}, {"customer_id", in.CustomerID}, {"end_user_id", in.EndUserID},
		{"device_id", in.DeviceID}, {"ip", in.IP}, {"email", in.Email}, {"phone", in.Phone}, {"card_fingerprint", in.CardFingerprint},
		{"card_bin", in.CardBIN}, {"card_last4", in.CardLast4}, {"amount", in.Amount}, {"currency", in.Currency}} {
		if f.v != "" && !quickString(f.k, f.v) {
			return in, false
		}
	}
	if a := in.ShippingAddress; a != nil {
		for _, f := range [...]struct{ k, v string }{{"line1", a.Line1}, {"line2", a.Line2}, {"city", a.City},
			{"postal_code", a.PostalCode}, {"state", a.State}, {"country", a.Country}} {
			if f.v != "" && !quickAddressField(f.k, f.v) {
				return in, false
			}
		}
	}
	if in.Properties != nil && !quickProperties(w.Type, in.Properties) {
		return in, false
	}
	if w.Time != "" {
		at, err := time.Parse(time.RFC3339Nano, w.Time)
		if err != nil {
			return in, false
		}
		in.Time = &at
	}
	return in, true
}
