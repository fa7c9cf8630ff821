package risk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/netip"
	"strings"
	"sync"
	"unicode"
)

// Personal identifiers (device id, IP, e-mail, phone, card fingerprint,
// shipping address) are never stored: each is normalized and replaced by
// a keyed hash, HMAC-SHA256 under a key of its own per tenant, derived
// from the module's secret (risk.hash_key). Equal identifiers of one
// tenant hash equally, so counters, the graph and lists still link them;
// another tenant's hashes differ, and without the secret a hash cannot be
// tested against guesses. The e-mail domain and the IP prefix (/24, /48)
// are kept in clear for features.

// HashPrefix starts every hashed identifier.
const HashPrefix = "h1_"

// hasher derives per-tenant keys from the module secret and keeps a pool
// of keyed HMACs per tenant (keying one costs more than hashing).
type hasher struct {
	secret []byte
	mu     sync.RWMutex
	pools  map[string]*sync.Pool
}

func newHasher(secret []byte) *hasher {
	return &hasher{secret: secret, pools: map[string]*sync.Pool{}}
}

func (h *hasher) pool(tenant string) *sync.Pool {
	h.mu.RLock()
	p := h.pools[tenant]
	h.mu.RUnlock()
	if p != nil {
		return p
	}
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte("abacus risk identifiers\x00" + tenant))
	k := m.Sum(nil)
	p = &sync.Pool{New: func() any { return &keyed{mac: hmac.New(sha256.New, k)} }}
	h.mu.Lock()
	if len(h.pools) > 100_000 {
		clear(h.pools)
	}
	h.pools[tenant] = p
	h.mu.Unlock()
	return p
}

// Hash returns the keyed hash of a normalized identifier of a kind
// ("email", "ip"…) for tenant; "" stays "".
func (h *hasher) Hash(tenant, kind, normalized string) string {
	if normalized == "" {
		return ""
	}
	p := h.pool(tenant)
	k := p.Get().(*keyed)
	k.mac.Reset()
	k.in = append(append(append(k.in[:0], kind...), 0), normalized...)
	k.mac.Write(k.in)
	out := k.mac.Sum(k.sum[:0])
	// One allocation, the string itself (five identifiers per event).
	var text [len(HashPrefix) + 24]byte
	copy(text[:], HashPrefix)
	base64.RawURLEncoding.Encode(text[len(HashPrefix):], out[:18])
	p.Put(k)
	return string(text[:])
}

// keyed is a tenant's keyed HMAC with its buffers: they outlive a call,
// so writing and summing through the hash.Hash interface allocates
// nothing.
type keyed struct {
	mac hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

// normalizeEmail lower-cases and trims an address; it returns the
// address and its domain.
func normalizeEmail(s string) (string, string) {
	s = strings.ToLower(strings.TrimSpace(s))
	_, domain, _ := strings.Cut(s, "@")
	return s, domain
}

// normalizePhone keeps the digits and a leading +.
func normalizePhone(s string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		if r == '+' && i == 0 || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// normalizeIP returns the canonical address and its prefix (/24 for IPv4,
// /48 for IPv6), or ok=false.
func normalizeIP(s string) (addr, prefix string, ok bool) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return "", "", false
	}
	a = a.Unmap().WithZone("")
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	return a.String(), p.String(), true
}

// normalizeText lower-cases and collapses white space.
func normalizeText(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}
