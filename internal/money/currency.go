// Package money holds currencies, their minor-unit exponents and the
// rounding rules Abacus applies to amounts.
//
// Amounts are shopspring decimals in a currency's major unit ("12.50"
// EUR). Intermediate amounts keep every digit; an amount is rounded to the
// currency's exponent only when it becomes a line a customer pays, using
// the plan's Rounding (half_up unless the plan says otherwise). See Round.
package money

import (
	"slices"
	"strings"

	"github.com/abacusbilling/abacus"
)

// Currency is an ISO 4217 currency: its alphabetic code and the number of
// digits after the decimal point of its minor unit (0 for JPY, 2 for EUR,
// 3 for KWD). It marshals to and from its code in JSON and text.
type Currency struct {
	Code     string
	Exponent int32
}

// String returns the currency's code.
func (c Currency) String() string { return c.Code }

// MarshalText encodes the currency as its code.
func (c Currency) MarshalText() ([]byte, error) { return []byte(c.Code), nil }

// UnmarshalText decodes a currency code; it returns the error of
// LookupCurrency for an unknown code.
func (c *Currency) UnmarshalText(b []byte) error {
	v, err := LookupCurrency(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// LookupCurrency returns the currency with the given ISO 4217 code. The code
// is matched case-insensitively ("eur" is EUR). Unknown codes give a
// KindInvalid *abacus.Error with code "unknown_currency".
func LookupCurrency(code string) (Currency, error) {
	up := strings.ToUpper(strings.TrimSpace(code))
	if exp, ok := exponents[up]; ok {
		return Currency{Code: up, Exponent: exp}, nil
	}
	return Currency{}, abacus.Invalid("unknown_currency",
		"currency %q is not a supported ISO 4217 code; use a code such as USD, EUR or JPY", code)
}

// MustCurrency is LookupCurrency for codes known at compile time; it panics
// on an unknown code.
func MustCurrency(code string) Currency {
	c, err := LookupCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

// Currencies returns the codes of every supported currency, sorted.
func Currencies() []string {
	out := make([]string, 0, len(exponents))
	for k := range exponents {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// exponents lists the ISO 4217 currencies in circulation with their minor
// unit. Fund codes (BOV, CLF, USN…) and metals (XAU…) are left out: no one
// invoices in them. Every code not listed with 0 or 3 has 2 digits.
var exponents = func() map[string]int32 {
	m := map[string]int32{}
	two := `AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL
BSD BTN BWP BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB
EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES
KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB
SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY
TTD TWD TZS UAH USD UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG`
	zero := `BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF`
	three := `BHD IQD JOD KWD LYD OMR TND`
	for _, set := range []struct {
		codes string
		exp   int32
	}{{two, 2}, {zero, 0}, {three, 3}} {
		for _, c := range strings.Fields(set.codes) {
			m[c] = set.exp
		}
	}
	return m
}()
