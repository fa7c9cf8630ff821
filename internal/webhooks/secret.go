package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every endpoint secret, as the Standard Webhooks
// libraries expect: whsec_ and the base64 of the HMAC key.
const SecretPrefix = "whsec_"

// secretBytes is the HMAC key size (the spec asks for 24 to 64 bytes).
const secretBytes = 32

// newSecret returns a fresh endpoint secret.
func newSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// sealer encrypts endpoint secrets at rest with AES-256-GCM; the endpoint
// id is the additional data, so a ciphertext copied to another row does
// not open.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("webhooks: the encryption key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("webhooks: secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhooks: secret key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(endpointID, secret string) string {
	if secret == "" {
		return ""
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, []byte(secret), []byte(endpointID))
	return "v1:" + base64.StdEncoding.EncodeToString(out)
}

func (s *sealer) open(endpointID, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errors.New("webhooks: stored secret is malformed")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(endpointID))
	if err != nil {
		return "", fmt.Errorf("webhooks: opening the secret of %s (was webhooks.encryption_key changed?): %w", endpointID, err)
	}
	return string(plain), nil
}

// sign returns the webhook-signature header value: one "v1,<base64>"
// per secret, space-separated (two while a rotated-out secret still signs).
func sign(msgID string, at time.Time, body []byte, secrets ...string) (string, error) {
	ts := strconv.FormatInt(at.Unix(), 10)
	var sigs []string
	for _, secret := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
		if err != nil {
			return "", fmt.Errorf("webhooks: secret is not base64: %w", err)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(msgID))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}
