package realtime_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// A JWT the tenant signs with its own Ed25519 key, registered with
// Abacus, connects as its sub; one signed with another key is refused
// (4003), an expired one gets 4001, and a deleted key stops connecting.
func TestTenantSignedTokens(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		n := newCluster(t, d).node("rt-a", nil, realtime.Config{})
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(pub)
		k, err := n.svc.RegisterPublicKey(tenantCtx(), realtime.PublicKeyInput{Algorithm: "EdDSA",
			PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.svc.RegisterPublicKey(tenantCtx(), realtime.PublicKeyInput{Algorithm: "RS256", PublicKey: k.PublicKey}); err == nil {
			t.Fatal("an Ed25519 key registered as RS256")
		}
		sign := func(key ed25519.PrivateKey, exp time.Time) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "ada", "exp": exp.Unix()})
			tok.Header["kid"] = k.Kid
			s, err := tok.SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		c := dial(t, n, sign(priv, time.Now().Add(time.Minute)))
		if c.ready.str("user_id") != "ada" {
			t.Fatalf("ready %v", c.ready)
		}
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		if code := dialRaw(t, n, sign(other, time.Now().Add(time.Minute))).closeCode(); code != realtime.CloseUnauthorized {
			t.Fatalf("forged: close %d", code)
		}
		if code := dialRaw(t, n, sign(priv, time.Now().Add(-time.Minute))).closeCode(); code != realtime.CloseTokenExpired {
			t.Fatalf("expired: close %d", code)
		}
		if err := n.svc.DeletePublicKey(tenantCtx(), k.Kid); err != nil {
			t.Fatal(err)
		}
		if code := dialRaw(t, n, sign(priv, time.Now().Add(time.Minute))).closeCode(); code != realtime.CloseUnauthorized {
			t.Fatalf("deleted key: close %d", code)
		}
	})
}
