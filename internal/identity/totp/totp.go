// Package totp implements time-based one-time passwords (RFC 6238, on
// HOTP of RFC 4226) for two-factor sign-in, and the single-use recovery
// codes that replace them when the device is lost.
//
// Enrolment: NewSecret, show ProvisioningURI as a QR code, then confirm
// with a first Validate before turning MFA on. Sign-in: Validate, and
// refuse the code when the returned step is not after the last step the
// account used (the caller stores it), so a code cannot be replayed within
// its 90-second window.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strings"
	"time"
)

// Algorithm is the HMAC hash of the OTP.
type Algorithm string

const (
	SHA1   Algorithm = "SHA1" // what authenticator apps support; the default
	SHA256 Algorithm = "SHA256"
	SHA512 Algorithm = "SHA512"
)

func (a Algorithm) hash() (func() hash.Hash, error) {
	switch a {
	case SHA1:
		return sha1.New, nil
	case SHA256:
		return sha256.New, nil
	case SHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("totp: unknown algorithm %q", a)
}

// Config describes the codes. Default is what every authenticator app
// understands.
type Config struct {
	Algorithm Algorithm
	Digits    int           // 6 or 8
	Period    time.Duration // time step; whole seconds
	Skew      int           // steps accepted either side of now
}

// Default is HMAC-SHA1, 6 digits, 30-second steps, ±1 step of clock skew.
var Default = Config{Algorithm: SHA1, Digits: 6, Period: 30 * time.Second, Skew: 1}

// Validate returns an error naming the first field out of range.
func (c Config) Validate() error {
	if _, err := c.Algorithm.hash(); err != nil {
		return err
	}
	switch {
	case c.Digits < 6 || c.Digits > 8:
		return fmt.Errorf("totp: Config.Digits %d must be 6 to 8", c.Digits)
	case c.Period < time.Second || c.Period%time.Second != 0:
		return fmt.Errorf("totp: Config.Period %s must be whole seconds", c.Period)
	case c.Skew < 0 || c.Skew > 2:
		return fmt.Errorf("totp: Config.Skew %d must be 0 to 2", c.Skew)
	}
	return nil
}

// secretBytes is the secret size RFC 4226 recommends: 160 bits.
const secretBytes = 20

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a new 160-bit secret as 32 base32 characters without
// padding, the form authenticator apps take. Store it encrypted or at
// least never log it: it is a long-lived credential.
func NewSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails; see crypto/rand.Read
	return b32.EncodeToString(b)
}

// decodeSecret accepts the base32 secret in any case, with or without
// spaces and padding, as people copy it from apps.
func decodeSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.Join(strings.Fields(secret), ""))
	s = strings.TrimRight(s, "=")
	key, err := b32.DecodeString(s)
	if err != nil || len(key) == 0 {
		return nil, errors.New("totp: secret is not base32")
	}
	return key, nil
}

// ProvisioningURI returns the otpauth:// URI an authenticator app scans
// to enrol secret with the Default configuration:
// otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30.
// Issuer and account are percent-encoded (spaces as %20, which every app
// reads, not '+').
func ProvisioningURI(issuer, account, secret string) string {
	return Default.ProvisioningURI(issuer, account, secret)
}

// ProvisioningURI is the package ProvisioningURI for configuration c.
func (c Config) ProvisioningURI(issuer, account, secret string) string {
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	label := esc(account)
	if issuer != "" {
		label = esc(issuer) + ":" + label
	}
	q := "secret=" + esc(secret)
	if issuer != "" {
		q += "&issuer=" + esc(issuer)
	}
	q += fmt.Sprintf("&algorithm=%s&digits=%d&period=%d", c.Algorithm, c.Digits, int64(c.Period/time.Second))
	return "otpauth://totp/" + label + "?" + q
}

// Step returns the time step t falls in.
func (c Config) Step(t time.Time) int64 {
	return t.Unix() / int64(c.Period/time.Second)
}

// hotp is RFC 4226's HOTP value of key at counter, as c.Digits digits.
func (c Config) hotp(key []byte, counter int64) (string, error) {
	h, err := c.Algorithm.hash()
	if err != nil {
		return "", err
	}
	mac := hmac.New(h, key)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f // dynamic truncation
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range c.Digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", c.Digits, bin%mod), nil
}

// Code returns the code for secret at time t. It returns an error when
// secret is not base32 or c is invalid.
func (c Config) Code(secret string, t time.Time) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	if err := c.Validate(); err != nil {
		return "", err
	}
	return c.hotp(key, c.Step(t))
}

// ValidateCode reports whether code is right for secret at now, within c.Skew
// steps, and which time step it matched. Callers must store the matched
// step per account and refuse a code whose step is not after the stored
// one, or the same code can be used twice. A malformed secret or code is
// simply not ok.
func (c Config) ValidateCode(secret, code string, now time.Time) (step int64, ok bool) {
	key, err := decodeSecret(secret)
	if err != nil || c.Validate() != nil || len(code) != c.Digits {
		return 0, false
	}
	cur := c.Step(now)
	// Check every window step, without stopping early, so timing does not
	// tell which step matched.
	for s := cur - int64(c.Skew); s <= cur+int64(c.Skew); s++ {
		want, err := c.hotp(key, s)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}

// Validate is Default.ValidateCode: 6 digits, 30-second steps, ±1 step.
// Callers must refuse a step not after the account's last used step; see
// Config.ValidateCode.
func Validate(secret, code string, now time.Time) (step int64, ok bool) {
	return Default.ValidateCode(secret, code, now)
}
