package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// Signing keys live in the signing_keys table (private JWK, created_at,
// retire_after), shared by every node. Each node holds a Keyring loaded
// from it, re-read every minute and whenever a token names a kid the node
// does not know, so a rotation on one node (or by `abacus keys rotate`)
// reaches the others without a restart.

func (s *Service) tokenConfig() token.Config {
	return token.Config{Issuer: s.a.opt.issuer, TTL: s.a.opt.access}
}

// keyring returns the node's keyring, loading (or, on empty data,
// creating) the keys when it is missing or stale.
func (s *Service) keyring(ctx context.Context) (*token.Keyring, error) {
	s.a.keyMu.Lock()
	defer s.a.keyMu.Unlock()
	now := s.clock.Now()
	if s.a.ring != nil && now.Sub(s.a.ringLoaded) < keyReloadEvery && !now.Before(s.a.ringLoaded) {
		return s.a.ring, nil
	}
	return s.loadKeyringLocked(ctx)
}

// reloadForKid re-reads the keys when kid is unknown, at most every 5
// seconds, so forged kids cannot hammer the database.
func (s *Service) reloadForKid(ctx context.Context, kid string) {
	s.a.keyMu.Lock()
	defer s.a.keyMu.Unlock()
	if s.a.ring != nil {
		for _, k := range s.a.ring.Keys() {
			if k.ID == kid {
				return
			}
		}
	}
	now := s.clock.Now()
	if now.Sub(s.a.ringTried) < 5*time.Second && now.After(s.a.ringTried) {
		return
	}
	s.a.ringTried = now
	if _, err := s.loadKeyringLocked(ctx); err != nil {
		s.log.WarnContext(ctx, "reloading signing keys", "err", err)
	}
}

func (s *Service) loadKeyringLocked(ctx context.Context) (*token.Keyring, error) {
	keys, err := s.loadKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		k := token.GenerateKey(s.clock.Now())
		if err := s.saveKey(ctx, s.db, k, true); err != nil {
			return nil, err
		}
		if keys, err = s.loadKeys(ctx); err != nil {
			return nil, err
		}
	}
	ring, err := token.NewKeyring(s.tokenConfig(), s.clock, keys...)
	if err != nil {
		return nil, fmt.Errorf("loading signing keys: %w", err)
	}
	if dropped := ring.Prune(s.clock.Now()); len(dropped) > 0 {
		for _, kid := range dropped {
			if _, err := s.db.ExecContext(ctx, `DELETE FROM signing_keys WHERE kid = $1`, kid); err != nil {
				return nil, fmt.Errorf("deleting retired signing key: %w", err)
			}
		}
	}
	s.a.ring, s.a.ringLoaded = ring, s.clock.Now()
	return ring, nil
}

func (s *Service) loadKeys(ctx context.Context) ([]token.Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT private_jwk FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("reading signing keys: %w", err)
	}
	defer rows.Close()
	var keys []token.Key
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		k, err := token.UnmarshalKey([]byte(raw))
		if err != nil {
			return nil, fmt.Errorf("reading signing keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

func (s *Service) saveKey(ctx context.Context, q db.Querier, k token.Key, insert bool) error {
	raw, err := k.MarshalPrivate()
	if err != nil {
		return err
	}
	var retire db.NullTime
	if !k.RetireAfter.IsZero() {
		retire = db.NullTime{Time: k.RetireAfter, Valid: true}
	}
	if insert {
		_, err = q.ExecContext(ctx, `INSERT INTO signing_keys (kid, private_jwk, created_at, retire_after) VALUES ($1, $2, $3, $4)
			ON CONFLICT (kid) DO NOTHING`, k.ID, string(raw), db.TimeOf(k.CreatedAt), retire)
	} else {
		_, err = q.ExecContext(ctx, `UPDATE signing_keys SET private_jwk = $1, retire_after = $2 WHERE kid = $3`, string(raw), retire, k.ID)
	}
	if err != nil {
		return fmt.Errorf("storing signing key %s: %w", k.ID, err)
	}
	return nil
}

// KeyInfo describes a signing key without its private material.
type KeyInfo struct {
	ID          string     `json:"kid"`
	CreatedAt   time.Time  `json:"created_at"`
	RetireAfter *time.Time `json:"retire_after,omitempty"`
}

// RotateKeys adds a new signing key that signs from now on and schedules
// the keys it replaces to retire once the last token they signed has
// expired (access TTL + leeway); until then they stay in the JWKS. It
// returns every key now kept. Other nodes pick the new key up within a
// minute, or at once when they see a token signed with it.
func (s *Service) RotateKeys(ctx context.Context) ([]KeyInfo, error) {
	ring, err := s.keyring(ctx)
	if err != nil {
		return nil, err
	}
	s.a.keyMu.Lock()
	defer s.a.keyMu.Unlock()
	added, retired := ring.Rotate(s.clock.Now())
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := s.saveKey(ctx, tx, added, true); err != nil {
			return err
		}
		for _, k := range retired {
			if err := s.saveKey(ctx, tx, k, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.a.ring = nil // the in-memory rotation did not land: reload next time
		return nil, err
	}
	var out []KeyInfo
	for _, k := range ring.Keys() {
		ki := KeyInfo{ID: k.ID, CreatedAt: k.CreatedAt}
		if !k.RetireAfter.IsZero() {
			t := k.RetireAfter
			ki.RetireAfter = &t
		}
		out = append(out, ki)
	}
	s.log.InfoContext(ctx, "rotated signing keys", "new_kid", added.ID, "retiring", len(retired))
	return out, nil
}

// JWKS returns the public signing keys as a JSON Web Key Set.
func (s *Service) JWKS(ctx context.Context) ([]byte, error) {
	ring, err := s.keyring(ctx)
	if err != nil {
		return nil, err
	}
	return ring.JWKS(), nil
}

// kidOf reads the kid from a JWT's header without verifying anything.
func kidOf(jwt string) string {
	head, _, ok := strings.Cut(jwt, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &h)
	return h.Kid
}
