package totp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// recoveryAlphabet is Crockford's base32 in lowercase: no i, l, o or u, so
// codes read aloud or copied from paper are not misread. 5 bits a character.
const recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// RecoveryCodeCount is how many recovery codes an account gets.
const RecoveryCodeCount = 10

// NewRecoveryCodes returns n single-use recovery codes formatted
// "xxxx-xxxx-xxxx" (12 characters, 60 bits each) and their hashes
// (HashRecoveryCode), in the same order. Show the plaintexts once and
// store only the hashes; delete a hash when its code is used. n below 1
// gives RecoveryCodeCount codes.
//
// 60 bits keeps a fast hash safe enough: the codes are random, and one is
// useful only together with the account's password.
func NewRecoveryCodes(n int) (plain, hashes []string) {
	if n < 1 {
		n = RecoveryCodeCount
	}
	plain = make([]string, n)
	hashes = make([]string, n)
	buf := make([]byte, 12)
	for i := range n {
		rand.Read(buf) // never fails; see crypto/rand.Read
		var b strings.Builder
		for j, v := range buf {
			if j > 0 && j%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(recoveryAlphabet[v&31]) // 256 is a multiple of 32: no bias
		}
		plain[i] = b.String()
		hashes[i] = HashRecoveryCode(plain[i])
	}
	return plain, hashes
}

// HashRecoveryCode returns the SHA-256 hex of code after normalising what
// people type: case, spaces and dashes are ignored, and o, i and l are read
// as 0, 1 and 1 (Crockford). Look a presented code up by this hash.
func HashRecoveryCode(code string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(code) {
		switch r {
		case '-', ' ', '\t':
			continue
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		b.WriteRune(r)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}
