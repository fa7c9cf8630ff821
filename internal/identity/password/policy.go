// Package password decides which passwords are acceptable (Policy) and
// stores them as argon2id hashes in PHC string format (Hasher).
//
// Neither type logs, and no error message repeats the password.
package password

import (
	_ "embed"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/abacusbilling/abacus"
)

// Error codes returned by Policy.Check.
const (
	CodeTooShort      = "password_too_short"
	CodeTooLong       = "password_too_long"
	CodeTooCommon     = "password_too_common"
	CodeContainsEmail = "password_contains_email"
)

// minEmailPart is the shortest e-mail local part we look for inside a
// password; shorter ones ("jo") would refuse too many good passwords.
const minEmailPart = 3

//go:embed common_passwords.txt
var commonPasswordsData string

// commonPasswords is parsed on first use so programs that never check a
// password do not pay for the 10,000-entry set.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10000)
	for line := range strings.Lines(commonPasswordsData) {
		if w := strings.TrimSpace(line); w != "" {
			set[strings.ToLower(w)] = struct{}{}
		}
	}
	return set
})

// Policy is the rule set a new password must meet. The zero value is not
// useful; start from DefaultPolicy.
type Policy struct {
	// MinLength and MaxLength count characters (Unicode code points), not
	// bytes. The maximum bounds the cost of hashing attacker-chosen input.
	MinLength int
	MaxLength int
}

// DefaultPolicy is the policy from the identity issue: 8–128 characters,
// not among the 10,000 most common passwords, not containing the e-mail's
// local part.
var DefaultPolicy = Policy{MinLength: 8, MaxLength: 128}

// IsCommon reports whether pw is, ignoring case, one of the 10,000 most
// common passwords.
func IsCommon(pw string) bool {
	_, ok := commonPasswords()[strings.ToLower(pw)]
	return ok
}

// Check returns nil when password is acceptable for the account with the
// given e-mail (which may be empty). Otherwise it returns a KindInvalid
// *abacus.Error whose Code names the first rule broken (CodeTooShort,
// CodeTooLong, CodeTooCommon, CodeContainsEmail) and whose Fields list
// every broken rule against the field "password".
func (p Policy) Check(password, email string) error {
	var v abacus.Validation
	code := ""
	fail := func(c, format string, args ...any) {
		if code == "" {
			code = c
		}
		v.Add("password", format, args...)
	}

	n := utf8.RuneCountInString(password)
	switch {
	case n < p.MinLength:
		fail(CodeTooShort, "use at least %d characters", p.MinLength)
	case p.MaxLength > 0 && n > p.MaxLength:
		fail(CodeTooLong, "use at most %d characters", p.MaxLength)
	}
	if IsCommon(password) {
		fail(CodeTooCommon, "this password is one of the most commonly used; choose one that is harder to guess")
	}
	if containsEmail(password, email) {
		fail(CodeContainsEmail, "do not include your e-mail address in your password")
	}
	return v.Err(code)
}

// containsEmail reports whether pw contains, ignoring case, the local part
// of email, or that local part without a "+tag" suffix.
func containsEmail(pw, email string) bool {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		at = len(email)
	}
	local := strings.ToLower(strings.TrimSpace(email[:at]))
	lower := strings.ToLower(pw)
	candidates := []string{local}
	if plus := strings.IndexByte(local, '+'); plus >= 0 {
		candidates = append(candidates, local[:plus])
	}
	for _, c := range candidates {
		if utf8.RuneCountInString(c) >= minEmailPart && strings.Contains(lower, c) {
			return true
		}
	}
	return false
}
