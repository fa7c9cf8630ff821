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
	return customType.MatchString(typ)
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
		if !quickTime.MatchString(s) {
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
		return len(s) <= 254 && quickEmail.MatchString(s)
	case "phone":
		return quickPhone.MatchString(s)
	case "card_bin":
		return quickBIN.MatchString(s)
	case "card_last4":
		return quickLast4.MatchString(s)
	case "amount":
		return quickAmount.MatchString(s)
	case "currency":
		return quickCurrency.MatchString(s)
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
		return quickCountry.MatchString(s)
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
