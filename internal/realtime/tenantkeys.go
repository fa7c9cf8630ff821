package realtime

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Tenant-signed connection tokens: the tenant registers a public key
// (RS256, ES256 or EdDSA) and its backend signs JWTs itself, with the
// key's kid (rtpk_…) in the header and claims sub (the user), exp, and
// optionally grants. No call to Abacus per token.
const publicKidPrefix = "rtpk_"

// PublicKeyInput registers a tenant's public key.
type PublicKeyInput struct {
	Algorithm string `json:"algorithm" enum:"RS256,ES256,EdDSA" example:"EdDSA"`
	PublicKey string `json:"public_key" maxLength:"8192" example:"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA…\n-----END PUBLIC KEY-----" doc:"PEM, SubjectPublicKeyInfo (PUBLIC KEY)"`
}

// PublicKey is a registered key.
type PublicKey struct {
	Kid       string    `json:"kid" example:"rtpk_01jd6z8q4m7x2v3b9n5k1c0abc" doc:"put it in the header of the tokens you sign"`
	Algorithm string    `json:"algorithm" enum:"RS256,ES256,EdDSA"`
	PublicKey string    `json:"public_key"`
	CreatedAt time.Time `json:"created_at"`
}

// parsePublicKey reads a PEM public key of alg.
func parsePublicKey(alg, p string) (any, error) {
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		return nil, errors.New("is not PEM")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("is not a PUBLIC KEY: %w", err)
	}
	switch k := k.(type) {
	case *rsa.PublicKey:
		if alg == "RS256" && k.N.BitLen() >= 2048 {
			return k, nil
		}
	case *ecdsa.PublicKey:
		if alg == "ES256" && k.Curve == elliptic.P256() {
			return k, nil
		}
	case ed25519.PublicKey:
		if alg == "EdDSA" {
			return k, nil
		}
	}
	return nil, fmt.Errorf("is not a %s key (RS256: RSA of 2048 bits or more, ES256: P-256, EdDSA: Ed25519)", alg)
}

// RegisterPublicKey stores a public key of the caller's tenant. Errors:
// invalid_public_key.
func (s *Service) RegisterPublicKey(ctx context.Context, in PublicKeyInput) (PublicKey, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return PublicKey{}, err
	}
	if _, err := parsePublicKey(in.Algorithm, in.PublicKey); err != nil {
		return PublicKey{}, abacus.Invalid("invalid_public_key", "public_key %s", err.Error()).WithField("body.public_key", err.Error())
	}
	k := PublicKey{Kid: abacus.NewID("rtpk"), Algorithm: in.Algorithm, PublicKey: in.PublicKey, CreatedAt: s.clock.Now()}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO realtime_public_keys (kid, tenant_id, algorithm, public_key, created_at) VALUES ($1, $2, $3, $4, $5)`,
		k.Kid, tenant, k.Algorithm, k.PublicKey, db.TimeOf(k.CreatedAt)); err != nil {
		return PublicKey{}, fmt.Errorf("storing a public key: %w", err)
	}
	return k, nil
}

// ListPublicKeys lists the tenant's registered keys.
func (s *Service) ListPublicKeys(ctx context.Context) (abacus.List[PublicKey], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[PublicKey]{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT kid, algorithm, public_key, created_at FROM realtime_public_keys WHERE tenant_id = $1 ORDER BY kid`, tenant)
	items, err := collect(rows, err, "listing public keys", func(r scanner) (PublicKey, error) {
		var k PublicKey
		var at db.Time
		err := r.Scan(&k.Kid, &k.Algorithm, &k.PublicKey, &at)
		k.CreatedAt = at.UTC()
		return k, err
	})
	if err != nil {
		return abacus.List[PublicKey]{}, err
	}
	if items == nil {
		items = []PublicKey{}
	}
	return abacus.ListOf(items, ""), nil
}

// DeletePublicKey removes a key: tokens it signed no longer connect.
// Connections open with them stay. Errors: public_key_not_found.
func (s *Service) DeletePublicKey(ctx context.Context, kid string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM realtime_public_keys WHERE tenant_id = $1 AND kid = $2`, tenant, kid)
	if err != nil {
		return fmt.Errorf("deleting a public key: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return abacus.NotFound("public_key", kid)
	}
	return nil
}

// verifyTenantToken checks a JWT signed with a registered public key
// (read from the database each time: a deleted key stops at once).
func (s *Service) verifyTenantToken(ctx context.Context, tok string) (Identity, error) {
	var c tokenClaims
	var tenant string
	_, err := jwt.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		var alg, pub string
		err := s.db.QueryRowContext(ctx, `SELECT tenant_id, algorithm, public_key FROM realtime_public_keys WHERE kid = $1`, kid).Scan(&tenant, &alg, &pub)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errTokenInvalid
		}
		if err != nil {
			return nil, fmt.Errorf("reading a public key: %w", err)
		}
		if t.Method.Alg() != alg {
			return nil, errTokenInvalid
		}
		return parsePublicKey(alg, pub)
	}, jwt.WithValidMethods([]string{"RS256", "ES256", "EdDSA"}), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.clock.Now), jwt.WithLeeway(0))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, errTokenExpired
	case err != nil:
		return Identity{}, errTokenInvalid
	case validUserID(c.Subject) != "" || (c.Tenant != "" && c.Tenant != tenant):
		return Identity{}, errTokenInvalid
	}
	return Identity{TenantID: tenant, UserID: c.Subject, Grants: c.Grants, Kind: "token", ExpiresAt: c.ExpiresAt.Time}, nil
}
