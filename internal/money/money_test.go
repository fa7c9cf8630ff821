package money_test

import (
	"encoding/json"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestLookupCurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want int32
	}{
		{"EUR", 2}, {"usd", 2}, {"JPY", 0}, {"KRW", 0}, {"VND", 0}, {"CLP", 0}, {"ISK", 0},
		{"BHD", 3}, {"KWD", 3}, {"OMR", 3}, {"JOD", 3}, {"TND", 3}, {"LYD", 3}, {"IQD", 3},
		{"CHF", 2}, {"INR", 2}, {"XCG", 2},
	}
	for _, tt := range tests {
		c, err := money.LookupCurrency(tt.code)
		if err != nil {
			t.Fatalf("LookupCurrency(%q): %v", tt.code, err)
		}
		if c.Exponent != tt.want {
			t.Errorf("%s exponent = %d, want %d", tt.code, c.Exponent, tt.want)
		}
	}
	for _, bad := range []string{"", "EU", "XXX", "XAU", "EURO"} {
		_, err := money.LookupCurrency(bad)
		e, ok := abacus.AsError(err)
		if !ok || e.Kind != abacus.KindInvalid || e.Code != "unknown_currency" {
			t.Errorf("LookupCurrency(%q) = %v, want unknown_currency", bad, err)
		}
	}
	if n := len(money.Currencies()); n < 150 {
		t.Errorf("only %d currencies", n)
	}
}

func TestRound(t *testing.T) {
	t.Parallel()
	eur, jpy, kwd := money.MustCurrency("EUR"), money.MustCurrency("JPY"), money.MustCurrency("KWD")
	tests := []struct {
		amount string
		c      money.Currency
		r      money.Rounding
		want   string
	}{
		{"0.125", eur, "", "0.13"},
		{"0.125", eur, money.RoundHalfUp, "0.13"},
		{"-0.125", eur, money.RoundHalfUp, "-0.13"},
		{"0.125", eur, money.RoundHalfEven, "0.12"},
		{"0.135", eur, money.RoundHalfEven, "0.14"},
		{"-0.125", eur, money.RoundHalfEven, "-0.12"},
		{"0.121", eur, money.RoundUp, "0.13"},
		{"-0.121", eur, money.RoundUp, "-0.13"},
		{"0.129", eur, money.RoundDown, "0.12"},
		{"-0.129", eur, money.RoundDown, "-0.12"},
		{"1.10", eur, money.RoundUp, "1.1"},
		{"2.5", jpy, money.RoundHalfUp, "3"},
		{"2.5", jpy, money.RoundHalfEven, "2"},
		{"3.5", jpy, money.RoundHalfEven, "4"},
		{"2.01", jpy, money.RoundUp, "3"},
		{"2.99", jpy, money.RoundDown, "2"},
		{"0.0005", kwd, money.RoundHalfUp, "0.001"},
		{"0.0005", kwd, money.RoundHalfEven, "0"},
		{"1.2344", kwd, money.RoundUp, "1.235"},
		{"1.2349", kwd, money.RoundDown, "1.234"},
		{"123456789012345678901234567890.005", eur, money.RoundHalfUp, "123456789012345678901234567890.01"},
	}
	for _, tt := range tests {
		got := money.Round(d(tt.amount), tt.c, tt.r)
		if !got.Equal(d(tt.want)) {
			t.Errorf("Round(%s, %s, %q) = %s, want %s", tt.amount, tt.c, tt.r, got, tt.want)
		}
	}
}

func TestRoundingJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		R money.Rounding `json:"rounding"`
	}
	if err := json.Unmarshal([]byte(`{"rounding":"half_even"}`), &v); err != nil || v.R != money.RoundHalfEven {
		t.Fatalf("unmarshal half_even: %v %q", err, v.R)
	}
	if err := json.Unmarshal([]byte(`{"rounding":""}`), &v); err != nil || v.R != money.RoundHalfUp {
		t.Fatalf("unmarshal empty: %v %q", err, v.R)
	}
	err := json.Unmarshal([]byte(`{"rounding":"nearest"}`), &v)
	if e, ok := abacus.AsError(err); !ok || e.Code != "invalid_rounding" || e.Fields[0].Field != "rounding" {
		t.Fatalf("unmarshal nearest: %v", err)
	}
	b, err := json.Marshal(struct {
		R money.Rounding `json:"r"`
	}{})
	if err != nil || string(b) != `{"r":"half_up"}` {
		t.Fatalf("marshal default = %s, %v", b, err)
	}
	if err := money.Rounding("down").Validate("plan.rounding"); err != nil {
		t.Errorf("down: %v", err)
	}
}

func TestCurrencyJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		C money.Currency `json:"currency"`
	}
	if err := json.Unmarshal([]byte(`{"currency":"kwd"}`), &v); err != nil || v.C.Code != "KWD" || v.C.Exponent != 3 {
		t.Fatalf("unmarshal: %v %+v", err, v.C)
	}
	if err := json.Unmarshal([]byte(`{"currency":"ABC"}`), &v); err == nil {
		t.Fatal("unknown currency accepted")
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"currency":"KWD"}` {
		t.Errorf("marshal = %s", b)
	}
}

func TestFormatAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount, code, want string
	}{
		{"1234.5", "EUR", "EUR 1,234.50"},
		{"0", "EUR", "EUR 0.00"},
		{"-0.001", "EUR", "EUR 0.00"},
		{"-1234567.891", "USD", "USD -1,234,567.89"},
		{"1234.5", "JPY", "JPY 1,235"},
		{"999", "JPY", "JPY 999"},
		{"0.125", "KWD", "KWD 0.125"},
		{"100000", "KWD", "KWD 100,000.000"},
	}
	for _, tt := range tests {
		if got := money.FormatAmount(d(tt.amount), money.MustCurrency(tt.code)); got != tt.want {
			t.Errorf("FormatAmount(%s %s) = %q, want %q", tt.amount, tt.code, got, tt.want)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount, code string
		want         int64
		ok           bool
	}{
		{"12.34", "EUR", 1234, true},
		{"12.345", "EUR", 0, false},
		{"500", "JPY", 500, true},
		{"1.234", "KWD", 1234, true},
		{"-0.5", "USD", -50, true},
		{"1e30", "USD", 0, false},
	}
	for _, tt := range tests {
		c := money.MustCurrency(tt.code)
		got, err := money.ToMinor(d(tt.amount), c)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ToMinor(%s %s) = %d, %v", tt.amount, tt.code, got, err)
		}
		if tt.ok && !money.FromMinor(got, c).Equal(d(tt.amount)) {
			t.Errorf("FromMinor(%d %s) = %s", got, tt.code, money.FromMinor(got, c))
		}
	}
}
