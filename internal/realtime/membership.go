package realtime

import (
	"context"

	"github.com/abacusbilling/abacus"
)

// IsMember reports whether user is a member of conversation in the tenant
// on ctx: the membership read API other modules (media) check access
// with. A conversation that does not exist has no members.
func (s *Service) IsMember(ctx context.Context, conversation, user string) (bool, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return false, err
	}
	_, ok, err := memberRole(ctx, s.db, tenant, conversation, user)
	return ok, err
}

// FeatureMessages is the plan feature (a metered feature on a meter of
// realtime.message usage events) that caps the messages a customer's
// users send per period: over it, a send is refused with
// message_quota_exceeded (docs/realtime.md, Metering and the message cap).
const FeatureMessages = "realtime_messages"
