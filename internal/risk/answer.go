package risk

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// appendDecision appends d's JSON, byte for byte what json.Marshal
// writes (TestAppendDecisionMatchesMarshal), to b. It answers every POST
// /risk/events: the generic encoder spent as long on this one answer as
// on the three documents stored with it, sorting the counters and values
// maps through reflection. A value it has no short way for (a property
// map, an array) goes through go-json; a NaN or infinite number, rules or
// an event make the whole answer go through it.
func appendDecision(b []byte, d *Decision) ([]byte, error) {
	if !finiteDecision(d) || len(d.Rules) > 0 || d.Event != nil {
		// Rules and the event are on GET answers only.
		return gojsonAppend(b, d)
	}
	b = append(b, `{"id":`...)
	b = appendString(b, d.ID)
	if d.EventID != "" {
		b = appendString(append(b, `,"event_id":`...), d.EventID)
	}
	b = appendString(append(b, `,"decision":`...), d.Decision)
	b = appendFloat(append(b, `,"score":`...), d.Score)
	b, err := appendReasons(append(b, `,"reasons":`...), d.Reasons)
	if err != nil {
		return nil, err
	}
	b = strconv.AppendBool(append(b, `,"default":`...), d.Default)
	b = appendFeatures(append(b, `,"features":`...), &d.Features)
	if b, err = appendReasons(append(b, `,"score_reasons":`...), d.ScoreReasons); err != nil {
		return nil, err
	}
	if b, err = appendReasons(append(b, `,"shadow":`...), d.Shadow); err != nil {
		return nil, err
	}
	b = appendRuleErrors(append(b, `,"rule_errors":`...), d.RuleErrors)
	b = append(b, `,"created_at":"`...)
	if b, err = d.CreatedAt.AppendText(b); err != nil {
		return nil, err
	}
	return append(b, `"}`...), nil
}

func gojsonAppend(b []byte, v any) ([]byte, error) {
	out, err := gojson.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, out...), nil
}

// finiteDecision reports whether every number of d can be written.
func finiteDecision(d *Decision) bool {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if !finite(d.Score) {
		return false
	}
	for _, v := range d.Features.Counters {
		if !finite(v) {
			return false
		}
	}
	return true
}

func appendFeatures(b []byte, f *Features) []byte {
	b = append(b, `{"counters":`...)
	if f.Counters == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		for i, k := range sortedKeys(f.Counters) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendFloat(append(appendString(b, k), ':'), f.Counters[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"graph":{"linked_accounts":`...)
	b = strconv.AppendInt(b, int64(f.Graph.LinkedAccounts), 10)
	b = strconv.AppendInt(append(b, `,"linked_labelled_fraud":`...), int64(f.Graph.LinkedLabelledFraud), 10)
	b = strconv.AppendInt(append(b, `,"component_size":`...), int64(f.Graph.ComponentSize), 10)
	b = append(b, `},"lists":`...)
	if f.Lists == nil {
		return append(b, "null}"...)
	}
	b = append(b, '{')
	for i, k := range sortedKeys(f.Lists) {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendBool(append(appendString(b, k), ':'), f.Lists[k])
	}
	return append(b, "}}"...)
}

func appendReasons(b []byte, rs []Reason) ([]byte, error) {
	if rs == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		r := &rs[i]
		b = appendString(append(b, `{"rule":`...), r.Rule)
		if r.Version != 0 {
			b = strconv.AppendInt(append(b, `,"version":`...), int64(r.Version), 10)
		}
		if r.Name != "" {
			b = appendString(append(b, `,"name":`...), r.Name)
		}
		if r.Action != "" {
			b = appendString(append(b, `,"action":`...), r.Action)
		}
		b = appendString(append(b, `,"description":`...), r.Description)
		var err error
		if b, err = appendValues(append(b, `,"values":`...), r.Values); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// appendValues writes the variables a reason names: numbers, strings and
// booleans here, anything else through go-json.
func appendValues(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendString(b, k), ':')
		switch v := m[k].(type) {
		case nil:
			b = append(b, "null"...)
		case string:
			b = appendString(b, v)
		case bool:
			b = strconv.AppendBool(b, v)
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return gojsonAppend(b, v) // refused, as before
			}
			b = appendFloat(b, v)
		default:
			var err error
			if b, err = gojsonAppend(b, v); err != nil {
				return nil, err
			}
		}
	}
	return append(b, '}'), nil
}

func appendRuleErrors(b []byte, es []RuleError) []byte {
	if es == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range es {
		if i > 0 {
			b = append(b, ',')
		}
		e := &es[i]
		b = appendString(append(b, `{"rule":`...), e.Rule)
		b = strconv.AppendInt(append(b, `,"version":`...), int64(e.Version), 10)
		b = appendString(append(b, `,"name":`...), e.Name)
		b = appendString(append(b, `,"mode":`...), e.Mode)
		b = appendString(append(b, `,"error":`...), e.Error)
		b = append(b, '}')
	}
	return append(b, ']')
}

// sortedKeys returns m's keys in order, as json.Marshal writes them.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendString writes s quoted. Printable ASCII without a quote, a
// backslash or an HTML-special character is copied; anything else takes
// go-json's escaping (HTML characters, control characters, invalid UTF-8
// and U+2028/2029, as encoding/json does).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			out, _ := gojson.Marshal(s) // a string always encodes
			return append(b, out...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat writes a finite f as encoding/json does: the shortest
// decimal, in exponent form below 1e-6 and from 1e21 on, with a
// two-digit exponent trimmed to one (1e-07 is 1e-7).
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
