package risk

import (
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// quickValid reports whether an event is certainly valid under the
// built-in schema (event.schema.json), without running the schema: it
// accepts a subset of what the schema accepts (checked by
// TestQuickValidImpliesSchema), so a false answer only means the schema
// decides, and names the problems. Most events take this path, at a
// tenth of the schema's cost.
func quickValid(m map[string]any) bool {
	typ, ok := m["type"].(string)
	if !ok || !quickType(typ) {
		return false
	}
	hasParty := false
	for k, v := range m {
		switch k {
		case "type":
		case "shipping_address":
			a, ok := v.(map[string]any)
			if !ok {
				return false
			}
			for ak, av := range a {
				s, ok := av.(string)
				if !ok || !utf8.ValidString(s) || !quickAddressField(ak, s) {
					return false
				}
			}
		case "properties":
			p, ok := v.(map[string]any)
			if !ok || !quickProperties(typ, p) {
				return false
			}
		default:
			s, ok := v.(string)
			if !ok || !quickString(k, s) {
				return false
			}
			hasParty = hasParty || k == "customer_id" || k == "end_user_id"
		}
	}
	_, hasAmount := m["amount"]
	_, hasCurrency := m["currency"]
	return hasParty && (!moneyType(typ) || hasAmount && hasCurrency)
}

// quickType reports whether typ is an event type.
func quickType(typ string) bool {
	switch typ {
	case TypeOrder, TypePayment, TypeRefund, TypeDispute, TypeRegistration, TypeLogin:
		return true
	}
	name, ok := strings.CutPrefix(typ, "custom:")
	return ok && len(name) >= 1 && len(name) <= 64 && isLowerDigit(name[0]) && all(name, func(c byte) bool { return isLowerDigit(c) || c == '_' || c == '.' || c == '-' })
}

// moneyType reports whether events of typ need amount and currency.
func moneyType(typ string) bool {
	switch typ {
	case TypeOrder, TypePayment, TypeRefund, TypeDispute:
		return true
	}
	return false
}

// quickString reports whether s is certainly valid as the string field k
// of an event (false for a field that is not a string field).
func quickString(k, s string) bool {
	switch k {
	case "customer_id", "end_user_id", "device_id", "card_fingerprint":
		return len(s) >= 1 && len(s) <= 255 && utf8.ValidString(s)
	case "time":
		if !isQuickTime(s) {
			return false
		}
		_, err := time.Parse(time.RFC3339Nano, s)
		return err == nil
	case "ip":
		if strings.ContainsAny(s, "%") {
			return false
		}
		a, err := netip.ParseAddr(s)
		return err == nil && (a.Is4() || strings.Contains(s, ":")) && !(a.Is4() && strings.Contains(s, ":"))
	case "email":
		return len(s) <= 254 && isQuickEmail(s)
	case "phone":
		p := strings.TrimPrefix(s, "+")
		return len(p) >= 4 && len(p) <= 32 && all(p, func(c byte) bool { return isDigit(c) || strings.IndexByte(" ()./-", c) >= 0 })
	case "card_bin":
		return len(s) >= 6 && len(s) <= 8 && all(s, isDigit)
	case "card_last4":
		return len(s) == 4 && all(s, isDigit)
	case "amount":
		whole, frac, dot := strings.Cut(s, ".")
		return len(whole) >= 1 && len(whole) <= 15 && all(whole, isDigit) && (!dot || len(frac) >= 1 && len(frac) <= 6 && all(frac, isDigit))
	case "currency":
		return len(s) == 3 && all(s, isUpper)
	}
	return false
}

// quickAddressField reports whether s is certainly valid as the field k
// of a shipping address.
func quickAddressField(k, s string) bool {
	switch k {
	case "line1", "line2":
		return len(s) <= 200
	case "city", "state":
		return len(s) <= 100
	case "postal_code":
		return len(s) <= 20
	case "country":
		return len(s) == 2 && all(s, isUpper)
	}
	return false
}

// quickProperties reports whether p is certainly valid as the properties
// of an event of type typ.
func quickProperties(typ string, p map[string]any) bool {
	if len(p) > 50 {
		return false
	}
	st, has := p["status"]
	if !has {
		return true
	}
	s, _ := st.(string)
	switch typ {
	case TypePayment, TypeLogin:
		return s == "succeeded" || s == "failed"
	case TypeDispute:
		return s == "opened" || s == "won" || s == "lost"
	}
	return true
}

// The checks below are hand-written forms of the regular expressions the
// quick checks used (the schema's patterns, and stricter ones for time and
// e-mail; quick_test.go keeps them and checks that each form answers as
// its expression does): matching them cost ~5 % of the CPU of deciding an
// event, the e-mail's backtracking most.

func all(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isUpper(c byte) bool      { return 'A' <= c && c <= 'Z' }
func isLowerDigit(c byte) bool { return 'a' <= c && c <= 'z' || isDigit(c) }
func isAlnum(c byte) bool      { return isUpper(c) || isLowerDigit(c) }

// isQuickTime is ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$.
func isQuickTime(s string) bool {
	const head = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(head)+1 {
		return false
	}
	for i := 0; i < len(head); i++ {
		if head[i] == 'd' && !isDigit(s[i]) || head[i] != 'd' && s[i] != head[i] {
			return false
		}
	}
	rest := s[len(head):]
	if frac, ok := strings.CutPrefix(rest, "."); ok {
		n := 0
		for n < len(frac) && isDigit(frac[n]) {
			n++
		}
		if n < 1 || n > 9 {
			return false
		}
		rest = frac[n:]
	}
	if rest == "Z" {
		return true
	}
	return len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && isDigit(rest[1]) && isDigit(rest[2]) && rest[3] == ':' && isDigit(rest[4]) && isDigit(rest[5])
}

// isQuickEmail is ^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@ then domain
// labels ([A-Za-z0-9], up to 63 with hyphens inside) and a last label of
// 2 to 63 letters.
func isQuickEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok {
		return false
	}
	for atom := range strings.SplitSeq(local, ".") {
		if atom == "" || !all(atom, func(c byte) bool { return isAlnum(c) || c == '_' || c == '%' || c == '+' || c == '-' }) {
			return false
		}
	}
	last := strings.LastIndexByte(domain, '.')
	if last < 0 {
		return false
	}
	if tld := domain[last+1:]; len(tld) < 2 || len(tld) > 63 || !all(tld, func(c byte) bool { return isUpper(c) || 'a' <= c && c <= 'z' }) {
		return false
	}
	for label := range strings.SplitSeq(domain[:last], ".") {
		if len(label) < 1 || len(label) > 63 || !isAlnum(label[0]) || !isAlnum(label[len(label)-1]) ||
			!all(label, func(c byte) bool { return isAlnum(c) || c == '-' }) {
			return false
		}
	}
	return true
}
