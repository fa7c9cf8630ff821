package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8
	KeyLen  uint32 // bytes of derived hash
	SaltLen uint32 // bytes of random salt
}

// DefaultParams are the production parameters: OWASP's argon2id minimum
// (m=19 MiB, t=2, p=1) with a 32-byte hash and a 16-byte salt. One hash
// costs about 19 MiB and a few tens of milliseconds.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// Validate returns an error naming the first parameter out of range.
func (p Params) Validate() error {
	switch {
	case p.Memory < 8*uint32(p.Threads) || p.Memory < 8:
		return fmt.Errorf("password: Params.Memory %d KiB is below 8 KiB per thread", p.Memory)
	case p.Time < 1:
		return errors.New("password: Params.Time must be at least 1")
	case p.Threads < 1:
		return errors.New("password: Params.Threads must be at least 1")
	case p.KeyLen < 16:
		return fmt.Errorf("password: Params.KeyLen %d is below 16 bytes", p.KeyLen)
	case p.SaltLen < 8:
		return fmt.Errorf("password: Params.SaltLen %d is below 8 bytes", p.SaltLen)
	}
	return nil
}

// ErrMalformedHash is returned (wrapped) by Verify when the stored string
// is not an argon2id PHC string this package can read. It means the stored
// data is corrupt, not that the password is wrong.
var ErrMalformedHash = errors.New("password: malformed argon2id PHC string")

// Hasher hashes and verifies passwords with argon2id. It is safe for
// concurrent use. Each call allocates Params.Memory KiB, so the caller
// should bound how many sign-ins hash at once.
type Hasher struct {
	params    Params
	dummyOnce sync.Once
	dummy     string // a hash nobody's password matches, for VerifyNothing
}

// NewHasher returns a Hasher that creates hashes with p. It returns an
// error when p is out of range (see Params.Validate).
func NewHasher(p Params) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Hasher{params: p}, nil
}

// Params returns the parameters new hashes are created with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns pw hashed with a fresh random salt as a PHC string,
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (unpadded standard
// base64). It returns no error today; the error is kept so a future
// parameter check or key-derivation backend can fail without an API break.
func (h *Hasher) Hash(pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt) // never fails; see crypto/rand.Read
	key := argon2.IDKey([]byte(pw), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	return encodePHC(h.params, salt, key), nil
}

// Verify reports whether pw matches the PHC string phc, comparing in
// constant time. needsRehash is true when pw matched but phc was made
// with parameters other than the Hasher's: the caller should then store
// a fresh Hash(pw). err wraps ErrMalformedHash when phc cannot be read.
func (h *Hasher) Verify(pw, phc string) (ok, needsRehash bool, err error) {
	p, salt, want, err := decodePHC(phc)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params, nil
}

// VerifyNothing does the work of one Verify against a hash made with the
// Hasher's parameters, for nothing. Sign-in calls it when the account does
// not exist, so response time does not tell an attacker which e-mail
// addresses have accounts.
func (h *Hasher) VerifyNothing(pw string) {
	h.dummyOnce.Do(func() { h.dummy, _ = h.Hash("not a password") })
	_, _, _ = h.Verify(pw, h.dummy)
}

var b64 = base64.RawStdEncoding

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// maxStoredMemory bounds the memory a stored hash can make Verify allocate
// (4 GiB), so one corrupt row cannot take the process down.
const maxStoredMemory = 4 << 20

func decodePHC(s string) (p Params, salt, key []byte, err error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: want $argon2id$v=..$m=..,t=..,p=..$salt$hash", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrMalformedHash, parts[2])
	}
	var m, t, th uint64
	for _, kv := range strings.Split(parts[3], ",") {
		name, val, found := strings.Cut(kv, "=")
		if !found {
			return p, nil, nil, fmt.Errorf("%w: parameter %q", ErrMalformedHash, kv)
		}
		var dst *uint64
		bits := 32
		switch name {
		case "m":
			dst = &m
		case "t":
			dst = &t
		case "p":
			dst, bits = &th, 8
		default:
			return p, nil, nil, fmt.Errorf("%w: unknown parameter %q", ErrMalformedHash, name)
		}
		if *dst, err = strconv.ParseUint(val, 10, bits); err != nil {
			return p, nil, nil, fmt.Errorf("%w: parameter %s: %w", ErrMalformedHash, name, err)
		}
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt: %w", ErrMalformedHash, err)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: hash: %w", ErrMalformedHash, err)
	}
	p = Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(th), KeyLen: uint32(len(key)), SaltLen: uint32(len(salt))}
	if err := p.Validate(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	if p.Memory > maxStoredMemory {
		return p, nil, nil, fmt.Errorf("%w: memory %d KiB above the 4 GiB bound", ErrMalformedHash, p.Memory)
	}
	return p, salt, key, nil
}
