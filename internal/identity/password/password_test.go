package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/identity/password"
)

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		email    string
		code     string // "" means accepted
		fields   int
	}{
		{"good", "correct horse battery staple", "ann@example.com", "", 0},
		{"exactly 8", "gV7#qLp2", "ann@example.com", "", 0},
		{"exactly 128", strings.Repeat("xY3$", 32), "", "", 0},
		{"7 chars", "gV7#qLp", "ann@example.com", password.CodeTooShort, 1},
		{"empty", "", "", password.CodeTooShort, 1},
		{"8 multibyte chars count as characters", "äöüßéèêë", "", "", 0},
		{"129 chars", strings.Repeat("a", 129), "", password.CodeTooLong, 1},
		{"common", "12345678", "ann@example.com", password.CodeTooCommon, 1},
		{"common, case-insensitive", "PassWord", "", password.CodeTooCommon, 1},
		{"common 8+ chars", "trustno1", "", password.CodeTooCommon, 1},
		{"common and short reports both", "qwerty", "", password.CodeTooShort, 2},
		{"contains email local part", "my-annabel-secret-9", "annabel@example.com", password.CodeContainsEmail, 1},
		{"contains email, case-insensitive", "xxANNABELxx-77", "Annabel@example.com", password.CodeContainsEmail, 1},
		{"contains email local part without +tag", "xx-annabel-xx-42", "annabel+abacus@example.com", password.CodeContainsEmail, 1},
		{"short local part ignored", "jo-rocks-the-house", "jo@example.com", "", 0},
		{"domain is not checked", "example-zebra-fish", "ann@example.com", "", 0},
		{"no email given", "zebra fish in a tree", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := password.DefaultPolicy.Check(tt.password, tt.email)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			e, ok := abacus.AsError(err)
			if !ok {
				t.Fatalf("Check() = %v, want *abacus.Error", err)
			}
			if e.Kind != abacus.KindInvalid || e.Code != tt.code {
				t.Errorf("Check() = %s/%s, want invalid/%s", e.Kind, e.Code, tt.code)
			}
			if len(e.Fields) != tt.fields {
				t.Errorf("fields = %+v, want %d", e.Fields, tt.fields)
			}
			for _, f := range e.Fields {
				if f.Field != "password" || f.Message == "" {
					t.Errorf("field error %+v, want field password with a message", f)
				}
			}
			if tt.password != "" && strings.Contains(e.Error(), tt.password) {
				t.Errorf("error %q repeats the password", e.Error())
			}
		})
	}
}

func TestCommonListShipsTenThousand(t *testing.T) {
	t.Parallel()
	// First, a middle and the 10,000th entry of the shipped list.
	for _, pw := range []string{"123456", "iloveyou", "qqqqqq1"} {
		if !password.IsCommon(pw) {
			t.Errorf("IsCommon(%q) = false, want true", pw)
		}
	}
	if password.IsCommon("gV7#qLp2-unusual") {
		t.Error("IsCommon of an unusual password = true")
	}
}

// cheap keeps tests fast; production uses DefaultParams.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func newHasher(t *testing.T, p password.Params) *password.Hasher {
	t.Helper()
	h, err := password.NewHasher(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap)
	phc, err := h.Hash("s3cret pass")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("Hash() = %q, want an argon2id PHC string with the hasher's params", phc)
	}
	if strings.Contains(phc, "s3cret") {
		t.Fatal("hash contains the password")
	}
	phc2, _ := h.Hash("s3cret pass")
	if phc == phc2 {
		t.Fatal("two hashes of the same password are equal: salt is not random")
	}

	ok, rehash, err := h.Verify("s3cret pass", phc)
	if err != nil || !ok || rehash {
		t.Fatalf("Verify(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	ok, rehash, err = h.Verify("s3cret pasS", phc)
	if err != nil || ok || rehash {
		t.Fatalf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
	h.VerifyNothing("anything") // must not panic and must not match
}

func TestVerifyNeedsRehashWhenParamsChange(t *testing.T) {
	t.Parallel()
	old := newHasher(t, cheap)
	phc, _ := old.Hash("pw-to-upgrade")

	changed := []password.Params{
		{Memory: 128, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16},
		{Memory: 64, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16},
		{Memory: 64, Time: 1, Threads: 2, KeyLen: 32, SaltLen: 16},
		{Memory: 64, Time: 1, Threads: 1, KeyLen: 16, SaltLen: 16},
		{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 32},
	}
	for _, p := range changed {
		ok, rehash, err := newHasher(t, p).Verify("pw-to-upgrade", phc)
		if err != nil || !ok || !rehash {
			t.Errorf("params %+v: Verify = %v, %v, %v; want true, true, nil", p, ok, rehash, err)
		}
	}
	// A wrong password never asks for a rehash.
	_, rehash, _ := newHasher(t, changed[0]).Verify("wrong", phc)
	if rehash {
		t.Error("needsRehash for a wrong password")
	}
}

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap)
	good, _ := h.Hash("pw")
	parts := strings.Split(good, "$")
	bad := []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=16$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1$" + parts[4] + "$" + parts[5] + "$x",
		"$argon2id$v=19$m=64,t=0,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=300$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=99999999999,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1,x=2$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$!!!$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$" + parts[5] + "==",
	}
	for _, s := range bad {
		ok, _, err := h.Verify("pw", s)
		if ok || !errors.Is(err, password.ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v; want false, ErrMalformedHash", s, ok, err)
		}
	}
}

func TestParamsValidate(t *testing.T) {
	t.Parallel()
	if err := password.DefaultParams.Validate(); err != nil {
		t.Fatalf("DefaultParams invalid: %v", err)
	}
	if password.DefaultParams.Memory < 19456 || password.DefaultParams.Time < 2 {
		t.Fatalf("DefaultParams %+v below m=19 MiB, t=2", password.DefaultParams)
	}
	bad := []password.Params{
		{Memory: 4, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16},
		{Memory: 64, Time: 0, Threads: 1, KeyLen: 32, SaltLen: 16},
		{Memory: 64, Time: 1, Threads: 0, KeyLen: 32, SaltLen: 16},
		{Memory: 64, Time: 1, Threads: 1, KeyLen: 8, SaltLen: 16},
		{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 4},
	}
	for _, p := range bad {
		if _, err := password.NewHasher(p); err == nil {
			t.Errorf("NewHasher(%+v) = nil error", p)
		}
	}
}

func BenchmarkHashDefault(b *testing.B) {
	h, _ := password.NewHasher(password.DefaultParams)
	for b.Loop() {
		_, _ = h.Hash("benchmark password")
	}
}
