package org

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// FeatureMaxDevices is the key of the plan feature that limits connected
// devices. It is a static feature (catalog), so a plan version grants it
// with a value and nothing new is needed in the catalog:
//
//	2                                                 2 devices, refuse the next, per organization
//	{"limit": 2, "on_limit": "evict_lru", "per": "user"}
//
// An organization whose customer's live subscription grants it enforces
// it on every sign-in of its members.
const FeatureMaxDevices = "max_devices"

// What happens at the limit (DevicePolicy.OnLimit).
const (
	OnLimitRefuse   = "refuse"    // the new sign-in is refused: 409 device_limit_reached
	OnLimitEvictLRU = "evict_lru" // the least recently used device is signed out
)

// What the limit counts (DevicePolicy.Per).
const (
	PerOrganization = "organization" // the devices of every member together
	PerUser         = "user"         // each member's own devices
)

// DevicePolicy is a max_devices value.
type DevicePolicy struct {
	Limit   int    `json:"limit"`
	OnLimit string `json:"on_limit" enum:"refuse,evict_lru"`
	Per     string `json:"per" enum:"organization,user"`
}

// ParsePolicy reads a max_devices value: a number (refuse, per
// organization) or an object. Errors name what is wrong.
func ParsePolicy(raw json.RawMessage) (DevicePolicy, error) {
	p := DevicePolicy{OnLimit: OnLimitRefuse, Per: PerOrganization}
	if err := json.Unmarshal(raw, &p.Limit); err != nil {
		if err := json.Unmarshal(raw, &p); err != nil {
			return p, fmt.Errorf("max_devices must be a number or {limit, on_limit, per}: %w", err)
		}
	}
	switch {
	case p.Limit < 0:
		return p, fmt.Errorf("max_devices limit %d is negative", p.Limit)
	case p.OnLimit != OnLimitRefuse && p.OnLimit != OnLimitEvictLRU:
		return p, fmt.Errorf("max_devices on_limit %q: use refuse or evict_lru", p.OnLimit)
	case p.Per != PerOrganization && p.Per != PerUser:
		return p, fmt.Errorf("max_devices per %q: use organization or user", p.Per)
	}
	return p, nil
}

// DeviceCounter counts the devices in use by end users of a tenant, in q
// (the sign-in's transaction). Sessions are counted by default; the
// real-time gateway adds its live connections with AddDeviceCounter.
type DeviceCounter func(ctx context.Context, q db.Querier, tenant string, userIDs []string) (int, error)

type limiter struct {
	s        *Service
	mu       sync.RWMutex
	counters []DeviceCounter
}

func newLimiter(s *Service) *limiter { return &limiter{s: s} }

// AddDeviceCounter adds a kind of device to what max_devices counts
// (beside sessions): live real-time connections, later.
func (s *Service) AddDeviceCounter(c DeviceCounter) {
	s.devices.mu.Lock()
	defer s.devices.mu.Unlock()
	s.devices.counters = append(s.devices.counters, c)
}

// count returns the sessions and all devices (sessions + other counters) of users.
func (l *limiter) count(ctx context.Context, q db.Querier, tenant string, users []string) (sessions, all int, err error) {
	sessions, err = l.s.eu.CountActiveSessions(ctx, q, tenant, users)
	if err != nil {
		return 0, 0, err
	}
	l.mu.RLock()
	cs := l.counters
	l.mu.RUnlock()
	all = sessions
	for _, c := range cs {
		n, err := c(ctx, q, tenant, users)
		if err != nil {
			return 0, 0, err
		}
		all += n
	}
	return sessions, all, nil
}

// policy returns the max_devices policy an organization's customer is
// granted (ok false: none). A value that does not parse is logged and
// not enforced: a typo in a plan must not lock every member out.
func (l *limiter) policy(ctx context.Context, tenant string, o Organization) (DevicePolicy, bool, error) {
	raw, ok, err := l.s.ents.StaticValue(ctx, tenant, o.CustomerID, FeatureMaxDevices)
	if err != nil || !ok {
		return DevicePolicy{}, false, err
	}
	p, err := ParsePolicy(raw)
	if err != nil {
		l.s.log.WarnContext(ctx, "max_devices not enforced", "tenant_id", tenant, "organization_id", o.ID, "err", err)
		return DevicePolicy{}, false, nil
	}
	return p, true, nil
}

// onSessionStart is enduser's OnSessionStart hook: for each organization
// of the user that has a max_devices policy, the new session (already
// inserted) must fit, or the sign-in is refused (refuse) or the least
// recently used devices are signed out (evict_lru).
func (l *limiter) onSessionStart(ctx context.Context, tx *db.Tx, u enduser.User, sess enduser.Session) error {
	ms, err := membershipsOf(ctx, tx, u.TenantID, u.ID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		p, ok, err := l.policy(ctx, u.TenantID, m.Organization)
		if err != nil {
			return err
		}
		if ok {
			if err := l.enforce(ctx, tx, u, m.Organization, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *limiter) enforce(ctx context.Context, tx *db.Tx, u enduser.User, o Organization, p DevicePolicy) error {
	users, err := l.lock(ctx, tx, u, o, p)
	if err != nil {
		return err
	}
	l.mu.RLock()
	sessionsOnly := len(l.counters) == 0
	l.mu.RUnlock()
	if p.OnLimit == OnLimitEvictLRU && sessionsOnly && p.Limit >= 1 {
		// One query fewer on the sign-in path: eviction reads the active
		// sessions anyway and signs out only what exceeds the limit.
		_, err = l.s.eu.RevokeLeastRecentlyUsed(ctx, tx, u.TenantID, users, p.Limit)
		return err
	}
	sessions, all, err := l.count(ctx, tx, u.TenantID, users)
	if err != nil || all <= p.Limit {
		return err
	}
	// Only sessions can be signed out here; other devices still count,
	// and the new session must stay.
	keep := p.Limit - (all - sessions)
	if p.OnLimit == OnLimitRefuse || keep < 1 {
		return deviceLimitReached(o, p, all-1)
	}
	_, err = l.s.eu.RevokeLeastRecentlyUsed(ctx, tx, u.TenantID, users, keep)
	return err
}

// lock serialises concurrent sign-ins under one limit and returns the
// users the limit counts.
func (l *limiter) lock(ctx context.Context, tx *db.Tx, u enduser.User, o Organization, p DevicePolicy) ([]string, error) {
	if p.Per == PerUser {
		return []string{u.ID}, lockMember(ctx, tx, o.ID, u.ID)
	}
	return lockMembers(ctx, tx, u.TenantID, o.ID)
}

func deviceLimitReached(o Organization, p DevicePolicy, inUse int) error {
	who := "organization " + o.Name
	if p.Per == PerUser {
		who = "account"
	}
	return abacus.Conflict("device_limit_reached",
		"the %s already uses %d of the %d devices its plan allows; sign out on another device, or ask for a plan with more", who, inUse, p.Limit)
}

// OrgDevices is how many devices an organization uses under its plan.
type OrgDevices struct {
	OrganizationID string          `json:"organization_id"`
	Feature        string          `json:"feature"`
	Limited        bool            `json:"limited" doc:"the organization's plan grants max_devices"`
	Policy         *DevicePolicy   `json:"policy,omitempty"`
	InUse          int             `json:"in_use" doc:"devices in use by all members"`
	Members        []MemberDevices `json:"members"`
}

// MemberDevices is one member's devices in use.
type MemberDevices struct {
	UserID string `json:"user_id"`
	InUse  int    `json:"in_use"`
}

// Devices answers how many devices an organization's members use and
// what its plan allows. Errors: organization_not_found.
func (s *Service) Devices(ctx context.Context, a Actor, org string) (OrgDevices, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return OrgDevices{}, err
	}
	if _, err := s.authorize(ctx, s.db, tenant, org, a, RoleMember); err != nil {
		return OrgDevices{}, err
	}
	o, err := loadOrg(ctx, s.db, tenant, org)
	if err != nil {
		return OrgDevices{}, err
	}
	out := OrgDevices{OrganizationID: o.ID, Feature: FeatureMaxDevices, Members: []MemberDevices{}}
	p, ok, err := s.devices.policy(ctx, tenant, o)
	if err != nil {
		return OrgDevices{}, err
	}
	if ok {
		out.Limited, out.Policy = true, &p
	}
	ids, err := memberIDs(ctx, s.db, tenant, org)
	if err != nil {
		return OrgDevices{}, err
	}
	for _, id := range ids {
		_, n, err := s.devices.count(ctx, s.db, tenant, []string{id})
		if err != nil {
			return OrgDevices{}, err
		}
		out.InUse += n
		out.Members = append(out.Members, MemberDevices{UserID: id, InUse: n})
	}
	return out, nil
}

// DevicesOfCustomer counts the devices in use by the members of the
// organization billed as customerID (0 when no organization is): what the
// entitlement check of max_devices reports as used.
func (s *Service) DevicesOfCustomer(ctx context.Context, tenant, customerID string) (int, error) {
	_, n, err := s.DeviceCountsOfCustomer(ctx, tenant, customerID)
	return n, err
}

// DeviceCountsOfCustomer is DevicesOfCustomer split: the members' active
// sessions, and every device in use (sessions and the other counters, such
// as live real-time connections).
func (s *Service) DeviceCountsOfCustomer(ctx context.Context, tenant, customerID string) (sessions, all int, err error) {
	org, err := orgOfCustomer(ctx, s.db, tenant, customerID)
	if err != nil || org == "" {
		return 0, 0, err
	}
	ids, err := memberIDs(ctx, s.db, tenant, org)
	if err != nil {
		return 0, 0, err
	}
	return s.devices.count(ctx, s.db, tenant, ids)
}
