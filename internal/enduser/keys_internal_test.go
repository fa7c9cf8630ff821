package enduser

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A signing key never prints its private half: not through fmt (any
// verb), not through slog.
func TestSigningKeysRedactThemselves(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{AlgEdDSA, AlgRS256} {
		k, err := generateKey(alg, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		secret, err := k.marshalPrivate()
		if err != nil {
			t.Fatal(err)
		}
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "key", k)
		out := fmt.Sprintf("%v %+v %#v %s %x", k, k, k, k, k) + logged.String()
		if !strings.Contains(out, k.kid) {
			t.Fatalf("%s: the kid is not shown: %s", alg, out)
		}
		// The private key in any form fmt would print it: base64 (stored),
		// hex, bytes as numbers, big integers in decimal.
		leaks := []string{secret[40:56]}
		switch p := k.priv.(type) {
		case ed25519.PrivateKey:
			leaks = append(leaks, hex.EncodeToString(p.Seed()[:8]), strings.TrimSuffix(fmt.Sprint([]byte(p.Seed()[:8])), "]"))
		case *rsa.PrivateKey:
			leaks = append(leaks, p.D.String()[:20], p.D.Text(16)[:20])
		}
		for _, l := range leaks {
			if strings.Contains(out, l) {
				t.Fatalf("%s: private material %q printed: %s", alg, l, out)
			}
		}
	}
}
