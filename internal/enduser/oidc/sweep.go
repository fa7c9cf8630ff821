package oidc

import (
	"context"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
)

// What has expired is deleted by whichever node issues a code, at most
// once a minute: codes an hour after they expired (a used code is kept
// that long so a late replay still revokes what it issued), SSO rows and
// revoked access tokens once expired. The rows are tenants' but nobody's
// data any more, so the sweep spans tenants.
const (
	sweepEvery   = time.Minute
	codeKeptFor  = time.Hour
	sweepTimeout = 10 * time.Second
)

// maybeSweep sweeps when the last sweep of this process is a minute old.
func (p *Provider) maybeSweep(ctx context.Context) {
	now := p.clock.Now()
	p.sweepMu.Lock()
	due := now.Sub(p.lastSweep) >= sweepEvery || now.Before(p.lastSweep)
	if due {
		p.lastSweep = now
	}
	p.sweepMu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sweepTimeout)
	defer cancel()
	if err := p.sweep(ctx, now); err != nil {
		p.log.WarnContext(ctx, "oidc: sweeping expired codes and sessions", "err", err)
	}
}

func (p *Provider) sweep(ctx context.Context, now time.Time) error {
	for _, q := range []struct {
		sql    string
		before time.Time
	}{
		{`DELETE FROM end_user_auth_codes WHERE expires_at < $1`, now.Add(-codeKeptFor)},
		{`DELETE FROM end_user_sso_sessions WHERE expires_at < $1`, now},
		{`DELETE FROM end_user_revoked_tokens WHERE expires_at < $1`, now},
	} {
		if _, err := p.db.ExecContext(ctx, q.sql, db.TimeOf(q.before)); err != nil {
			return fmt.Errorf("sweeping: %w", err)
		}
	}
	return nil
}
