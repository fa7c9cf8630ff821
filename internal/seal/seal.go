// Package seal encrypts secrets at rest with AES-256-GCM: a random nonce
// per value, and additional data binding a sealed value to the row it
// belongs to (an id), so a ciphertext copied to another row does not open.
// Sealed values are text: "v1:" and the base64 of nonce‖ciphertext.
//
// Keys come from configuration (base64 of 32 bytes) or, when none is set,
// from a file in the data directory created on first use (LoadOrCreateKey);
// every node of a cluster needs the same key.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the key length in bytes (AES-256).
const KeySize = 32

// Sealer seals and opens secrets with one key.
type Sealer struct{ aead cipher.AEAD }

// New returns a Sealer for a KeySize-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: the key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain bound to ad (the id of the row that keeps it). An
// empty plain stays empty.
func (s *Sealer) Seal(ad, plain string) string {
	if plain == "" {
		return ""
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return "v1:" + base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(plain), []byte(ad)))
}

// Open decrypts what Seal returned for the same ad. It fails when the
// value is malformed, was sealed for another ad, or with another key.
func (s *Sealer) Open(ad, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	n := s.aead.NonceSize()
	if err != nil || len(raw) < n {
		return "", errors.New("seal: the sealed value is malformed")
	}
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(ad))
	if err != nil {
		return "", fmt.Errorf("seal: the value of %s does not open with this key (was the key changed?)", ad)
	}
	return string(plain), nil
}

// LoadOrCreateKey returns the key: key (base64 of 32 bytes) when set,
// else the one kept in dataDir/file, created on first use. setting names
// the configuration key in the error for a bad value.
func LoadOrCreateKey(key, dataDir, file, setting string) ([]byte, error) {
	if key != "" {
		b, err := base64.StdEncoding.DecodeString(key)
		if err != nil || len(b) != KeySize {
			return nil, fmt.Errorf("%s must be the base64 of %d bytes (e.g. openssl rand -base64 32)", setting, KeySize)
		}
		return b, nil
	}
	path := filepath.Join(dataDir, file)
	if b, err := os.ReadFile(path); err == nil {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != KeySize {
			return nil, fmt.Errorf("%s does not hold the base64 of %d bytes", path, KeySize)
		}
		return k, nil
	}
	b := make([]byte, KeySize)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b)), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return b, nil
}
