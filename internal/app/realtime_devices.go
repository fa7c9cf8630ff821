package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/abacusbilling/abacus/internal/enduser/org"
	"github.com/abacusbilling/abacus/internal/realtime"
	"github.com/abacusbilling/abacus/internal/realtime/presence"
)

// connectionLimit returns the check the gateway runs before it admits an
// end user's connection: for each organization of the user whose plan
// grants max_devices, the live connections it counts (the user's, or
// every member's with per organization) on every node, this one
// included, must stay within the limit; else the connection is refused
// with close code 4010. Sign-in sessions are not counted here (a device
// signs in and connects: it would count twice); on_limit evict_lru also
// refuses, since only sessions are evicted. Users that are not end users
// (the tenant's own ids) have no organization and no limit.
func (a *App) connectionLimit(tr *presence.Tracker) func(ctx context.Context, c realtime.ConnInfo) error {
	return func(ctx context.Context, c realtime.ConnInfo) error {
		if !strings.HasPrefix(c.UserID, "eu_") {
			return nil
		}
		orgs := a.Organizations()
		tctx := tenantCtx(ctx, c.TenantID)
		ms, err := orgs.Mine(tctx, c.UserID)
		if err != nil {
			return fmt.Errorf("reading the organizations of %s: %w", c.UserID, err)
		}
		for _, m := range ms {
			d, err := orgs.Devices(tctx, org.Actor{Staff: true, ID: "realtime"}, m.ID)
			if err != nil {
				return fmt.Errorf("reading the device limit of %s: %w", m.ID, err)
			}
			if !d.Limited || d.Policy == nil {
				continue
			}
			users := []string{c.UserID}
			if d.Policy.Per == org.PerOrganization {
				users = users[:0]
				for _, mem := range d.Members {
					users = append(users, mem.UserID)
				}
			}
			if live := tr.Devices(c.TenantID, users); live >= d.Policy.Limit {
				who := "organization " + m.Name
				if d.Policy.Per == org.PerUser {
					who = "account"
				}
				return &realtime.CloseError{Code: int(realtime.CloseTooManyConns),
					Reason: fmt.Sprintf("the %s has %d live connections, its plan allows %d", who, live, d.Policy.Limit)}
			}
		}
		return nil
	}
}
