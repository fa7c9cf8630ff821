// Package token mints the credentials identity hands out: opaque secrets
// (refresh tokens, API keys, reset and verification links) stored only as
// hashes, and short-lived JWT access tokens signed with Ed25519 by a
// rotating Keyring whose public keys are published as a JWKS.
//
// Private keys and plaintext secrets never reach a log line: PrivateKey,
// Key and Keyring redact themselves for fmt, slog and encoding/json.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// opaqueBytes is the randomness in an opaque secret: 256 bits.
const opaqueBytes = 32

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewOpaque returns a new random secret carrying 256 bits of randomness as
// "<prefix>_<52 lowercase base32 characters>" (no separator when prefix is
// empty), and its Hash. Store only the hash; hand the plaintext to the
// caller once. The prefix (e.g. "rt" for refresh tokens) lets people and
// secret scanners tell kinds apart.
func NewOpaque(prefix string) (plaintext, hash string) {
	b := make([]byte, opaqueBytes)
	rand.Read(b) // never fails; see crypto/rand.Read
	plaintext = strings.ToLower(b32.EncodeToString(b))
	if prefix != "" {
		plaintext = prefix + "_" + plaintext
	}
	return plaintext, Hash(plaintext)
}

// Hash returns the SHA-256 of plaintext as 64 lowercase hex characters.
//
// A fast hash is right here, unlike for passwords: the secret has 256 bits
// of randomness, so a leaked hash cannot be reversed by guessing, and a
// fast, unsalted, deterministic hash lets the store look the token up by
// its hash with an index.
func Hash(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}
