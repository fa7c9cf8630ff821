package risk

import (
	"net/netip"
	"regexp"
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
	if !ok {
		return false
	}
	money := false
	switch typ {
	case TypeOrder, TypePayment, TypeRefund, TypeDispute:
		money = true
	case TypeRegistration, TypeLogin:
	default:
		if !customType.MatchString(typ) {
			return false
		}
	}
	hasParty := false
	for k, v := range m {
		switch k {
		case "type":
		case "customer_id", "end_user_id":
			if !quickID(v) {
				return false
			}
			hasParty = true
		case "device_id", "card_fingerprint":
			if !quickID(v) {
				return false
			}
		case "time":
			s, ok := v.(string)
			if !ok || !quickTime.MatchString(s) {
				return false
			}
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				return false
			}
		case "ip":
			s, ok := v.(string)
			if !ok || strings.ContainsAny(s, "%") {
				return false
			}
			a, err := netip.ParseAddr(s)
			if err != nil || (!a.Is4() && !strings.Contains(s, ":")) || (a.Is4() && strings.Contains(s, ":")) {
				return false
			}
		case "email":
			s, ok := v.(string)
			if !ok || len(s) > 254 || !quickEmail.MatchString(s) {
				return false
			}
		case "phone":
			if !quickMatch(v, quickPhone) {
				return false
			}
		case "card_bin":
			if !quickMatch(v, quickBIN) {
				return false
			}
		case "card_last4":
			if !quickMatch(v, quickLast4) {
				return false
			}
		case "amount":
			if !quickMatch(v, quickAmount) {
				return false
			}
		case "currency":
			if !quickMatch(v, quickCurrency) {
				return false
			}
		case "shipping_address":
			a, ok := v.(map[string]any)
			if !ok {
				return false
			}
			for ak, av := range a {
				s, ok := av.(string)
				if !ok || !utf8.ValidString(s) {
					return false
				}
				switch ak {
				case "line1", "line2":
					ok = len(s) <= 200
				case "city", "state":
					ok = len(s) <= 100
				case "postal_code":
					ok = len(s) <= 20
				case "country":
					ok = quickCountry.MatchString(s)
				default:
					ok = false
				}
				if !ok {
					return false
				}
			}
		case "properties":
			p, ok := v.(map[string]any)
			if !ok || len(p) > 50 {
				return false
			}
			if st, has := p["status"]; has {
				s, _ := st.(string)
				switch typ {
				case TypePayment, TypeLogin:
					if s != "succeeded" && s != "failed" {
						return false
					}
				case TypeDispute:
					if s != "opened" && s != "won" && s != "lost" {
						return false
					}
				}
			}
		default:
			return false
		}
	}
	if !hasParty {
		return false
	}
	if money {
		if _, ok := m["amount"]; !ok {
			return false
		}
		if _, ok := m["currency"]; !ok {
			return false
		}
	}
	return true
}

func quickID(v any) bool {
	s, ok := v.(string)
	return ok && len(s) >= 1 && len(s) <= 255 && utf8.ValidString(s)
}

func quickMatch(v any, re *regexp.Regexp) bool {
	s, ok := v.(string)
	return ok && re.MatchString(s)
}

var (
	customType    = regexp.MustCompile(`^custom:[a-z0-9][a-z0-9_.-]{0,63}$`)
	quickTime     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$`)
	quickEmail    = regexp.MustCompile(`^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$`)
	quickPhone    = regexp.MustCompile(`^\+?[0-9 ()./-]{4,32}$`)
	quickBIN      = regexp.MustCompile(`^[0-9]{6,8}$`)
	quickLast4    = regexp.MustCompile(`^[0-9]{4}$`)
	quickAmount   = regexp.MustCompile(`^[0-9]{1,15}(\.[0-9]{1,6})?$`)
	quickCurrency = regexp.MustCompile(`^[A-Z]{3}$`)
	quickCountry  = regexp.MustCompile(`^[A-Z]{2}$`)
)
