package totp_test

import (
	"encoding/base32"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/identity/totp"
)

func b32(s string) string { return base32.StdEncoding.EncodeToString([]byte(s)) }

// RFC 6238 appendix B: 8-digit codes, 30-second steps.
func TestRFC6238Vectors(t *testing.T) {
	t.Parallel()
	secrets := map[totp.Algorithm]string{
		totp.SHA1:   b32("12345678901234567890"),
		totp.SHA256: b32("12345678901234567890123456789012"),
		totp.SHA512: b32("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	tests := []struct {
		unix int64
		alg  totp.Algorithm
		want string
	}{
		{59, totp.SHA1, "94287082"},
		{1111111109, totp.SHA1, "07081804"},
		{1111111111, totp.SHA1, "14050471"},
		{1234567890, totp.SHA1, "89005924"},
		{2000000000, totp.SHA1, "69279037"},
		{20000000000, totp.SHA1, "65353130"},
		{59, totp.SHA256, "46119246"},
		{1111111109, totp.SHA256, "68084774"},
		{1111111111, totp.SHA256, "67062674"},
		{1234567890, totp.SHA256, "91819424"},
		{2000000000, totp.SHA256, "90698825"},
		{20000000000, totp.SHA256, "77737706"},
		{59, totp.SHA512, "90693936"},
		{1111111109, totp.SHA512, "25091201"},
		{1111111111, totp.SHA512, "99943326"},
		{1234567890, totp.SHA512, "93441116"},
		{2000000000, totp.SHA512, "38618901"},
		{20000000000, totp.SHA512, "47863826"},
	}
	for _, tt := range tests {
		cfg := totp.Config{Algorithm: tt.alg, Digits: 8, Period: 30 * time.Second, Skew: 1}
		at := time.Unix(tt.unix, 0)
		got, err := cfg.Code(secrets[tt.alg], at)
		if err != nil || got != tt.want {
			t.Errorf("%s at %d: Code = %q, %v; want %s", tt.alg, tt.unix, got, err, tt.want)
		}
		if step, ok := cfg.ValidateCode(secrets[tt.alg], tt.want, at); !ok || step != tt.unix/30 {
			t.Errorf("%s at %d: Validate = %d, %v; want %d, true", tt.alg, tt.unix, step, ok, tt.unix/30)
		}
	}
}

// RFC 4226 appendix D: 6-digit HOTP for counters 0–9 (a 1-second period
// makes the step equal the counter).
func TestRFC4226Vectors(t *testing.T) {
	t.Parallel()
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	cfg := totp.Config{Algorithm: totp.SHA1, Digits: 6, Period: time.Second}
	for i, w := range want {
		if got, _ := cfg.Code(b32("12345678901234567890"), time.Unix(int64(i), 0)); got != w {
			t.Errorf("counter %d: %q, want %q", i, got, w)
		}
	}
}

func TestValidateSkew(t *testing.T) {
	t.Parallel()
	secret := totp.NewSecret()
	clock := abacus.NewFakeClock(time.Date(2026, 11, 3, 10, 0, 15, 0, time.UTC))
	issued := clock.Now()
	code, err := totp.Default.Code(secret, issued)
	if err != nil {
		t.Fatal(err)
	}
	issuedStep := totp.Default.Step(issued)
	tests := []struct {
		offset time.Duration
		ok     bool
	}{
		{-60 * time.Second, false}, // two steps early
		{-30 * time.Second, true},  // one step early: phone clock ahead
		{0, true},
		{30 * time.Second, true}, // one step late: typed slowly
		{60 * time.Second, false},
		{time.Hour, false},
	}
	for _, tt := range tests {
		step, ok := totp.Validate(secret, code, issued.Add(tt.offset))
		if ok != tt.ok {
			t.Errorf("offset %s: ok = %v, want %v", tt.offset, ok, tt.ok)
		}
		if ok && step != issuedStep {
			t.Errorf("offset %s: step = %d, want the code's step %d", tt.offset, step, issuedStep)
		}
	}
}

func TestValidateRefusesMalformed(t *testing.T) {
	t.Parallel()
	secret := totp.NewSecret()
	now := time.Unix(1_800_000_000, 0)
	code, _ := totp.Default.Code(secret, now)
	for name, c := range map[string][2]string{
		"wrong code":     {secret, flip(code)},
		"empty code":     {secret, ""},
		"too long":       {secret, code + "0"},
		"bad secret":     {"!!!", code},
		"other secret":   {totp.NewSecret(), code},
		"letters 6 wide": {secret, "abcdef"},
	} {
		if _, ok := totp.Validate(c[0], c[1], now); ok {
			t.Errorf("%s: Validate ok", name)
		}
	}
	// The secret may be typed in lower case with spaces.
	spaced := strings.ToLower(secret[:4] + " " + secret[4:])
	if _, ok := totp.Validate(spaced, code, now); !ok {
		t.Error("Validate refuses a lower-case, spaced secret")
	}
}

func flip(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	s := totp.NewSecret()
	if !regexp.MustCompile(`^[A-Z2-7]{32}$`).MatchString(s) {
		t.Fatalf("NewSecret = %q, want 32 base32 characters (160 bits), no padding", s)
	}
	if s == totp.NewSecret() {
		t.Fatal("NewSecret repeated")
	}
}

func TestProvisioningURI(t *testing.T) {
	t.Parallel()
	got := totp.ProvisioningURI("Acme Billing", "ann+x@example.com", "JBSWY3DPEHPK3PXP")
	want := "otpauth://totp/Acme%20Billing:ann%2Bx%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Acme%20Billing&algorithm=SHA1&digits=6&period=30"
	if got != want {
		t.Fatalf("ProvisioningURI =\n %s\nwant\n %s", got, want)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Acme Billing:ann+x@example.com" ||
		q.Get("issuer") != "Acme Billing" || q.Get("secret") != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("parsed back as %q %q %q %v", u.Scheme, u.Host, u.Path, q)
	}
	// An ampersand in the issuer cannot inject a parameter.
	u, _ = url.Parse(totp.ProvisioningURI("A&digits=8", "b", "JBSWY3DPEHPK3PXP"))
	if u.Query().Get("digits") != "6" || u.Query().Get("issuer") != "A&digits=8" {
		t.Fatalf("issuer escaped badly: %v", u.Query())
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := totp.Default.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []totp.Config{
		{Algorithm: "MD5", Digits: 6, Period: 30 * time.Second},
		{Algorithm: totp.SHA1, Digits: 5, Period: 30 * time.Second},
		{Algorithm: totp.SHA1, Digits: 9, Period: 30 * time.Second},
		{Algorithm: totp.SHA1, Digits: 6, Period: 1500 * time.Millisecond},
		{Algorithm: totp.SHA1, Digits: 6, Period: 30 * time.Second, Skew: 3},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v: Validate = nil", c)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	t.Parallel()
	plain, hashes := totp.NewRecoveryCodes(0)
	if len(plain) != 10 || len(hashes) != 10 {
		t.Fatalf("got %d codes, %d hashes; want 10 each", len(plain), len(hashes))
	}
	format := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)
	seen := map[string]bool{}
	for i, p := range plain {
		if !format.MatchString(p) {
			t.Errorf("code %q not xxxx-xxxx-xxxx in Crockford base32", p)
		}
		if hashes[i] != totp.HashRecoveryCode(p) || strings.Contains(hashes[i], strings.ReplaceAll(p, "-", "")) {
			t.Errorf("hash %d does not match its code", i)
		}
		if seen[p] {
			t.Errorf("code %q repeated", p)
		}
		seen[p] = true
	}
	// What people type: upper case, no dashes, spaces, o for 0, l for 1.
	typed := strings.ToUpper(strings.ReplaceAll(plain[0], "-", " "))
	if totp.HashRecoveryCode(typed) != hashes[0] {
		t.Error("normalised typing does not match")
	}
	if totp.HashRecoveryCode("0000-1111-zzzz") != totp.HashRecoveryCode("oOoo-iIlL-ZZZZ") {
		t.Error("o, i, l are not read as 0, 1, 1")
	}
	if totp.HashRecoveryCode(plain[0]) == totp.HashRecoveryCode(plain[1]) {
		t.Error("two codes share a hash")
	}
	if p, _ := totp.NewRecoveryCodes(3); len(p) != 3 {
		t.Errorf("NewRecoveryCodes(3) gave %d codes", len(p))
	}
}
