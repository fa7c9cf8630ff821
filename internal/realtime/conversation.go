package realtime

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Conversation kinds.
const (
	KindPrivate = "private" // exactly two users, one conversation per pair per tenant
	KindGroup   = "group"   // any number of members up to member_limit, with roles
)

// ConversationMember roles in a group. Both members of a private conversation are
// RoleMember.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Conversation is a private or group conversation.
type Conversation struct {
	ID          string         `json:"id" example:"cnv_01jd6z8q4m7x2v3b9n5k1c0abc"`
	Kind        string         `json:"kind" enum:"private,group" example:"group"`
	Title       string         `json:"title" example:"Weekend hike"`
	Metadata    map[string]any `json:"metadata" doc:"the tenant's own JSON object"`
	MemberLimit int            `json:"member_limit" example:"1000"`
	MemberCount int            `json:"member_count" example:"3"`
	LastSeq     int64          `json:"last_seq" example:"42" doc:"sequence number of the latest message; 0 before the first"`
	CreatedBy   string         `json:"created_by" example:"user_ada" doc:"the owner named at creation (empty for a private conversation)"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
	// Membership is the state of the member the list was filtered by
	// (member_id); absent otherwise.
	Membership *MemberState `json:"membership,omitempty"`
}

// MemberState is one member's state in a conversation.
type MemberState struct {
	Role        string `json:"role" enum:"owner,admin,member" example:"member"`
	LastReadSeq int64  `json:"last_read_seq" example:"40"`
	Unread      int64  `json:"unread" example:"2" doc:"messages after last_read_seq from others, not deleted"`
}

// ConversationMember is a member of a conversation.
type ConversationMember struct {
	UserID      string    `json:"user_id" example:"user_ada"`
	Role        string    `json:"role" enum:"owner,admin,member" example:"member"`
	LastReadSeq int64     `json:"last_read_seq" example:"40" doc:"the latest message the member has read (read receipts)"`
	JoinedAt    time.Time `json:"joined_at"`
}

// NewConversation is the input of CreateConversation.
type NewConversation struct {
	Kind      string   `json:"kind" enum:"private,group" example:"private"`
	MemberIDs []string `json:"member_ids" minItems:"1" example:"[\"user_ada\",\"user_bob\"]" doc:"private: exactly two user ids; group: the first members (the owner included). User ids are the tenant's own identifiers or end-user ids."`
	Title     string   `json:"title,omitempty" maxLength:"200" example:"Weekend hike"`
	// OwnerID is the group's owner; default the first of member_ids.
	OwnerID     string         `json:"owner_id,omitempty" doc:"group only: the owner, one of member_ids (default: the first)"`
	Metadata    map[string]any `json:"metadata,omitempty" doc:"group only: a JSON object of the tenant's own (at most 8 KiB)"`
	MemberLimit int            `json:"member_limit,omitempty" minimum:"0" doc:"group only: most members at once (default and maximum: realtime's member limit)"`
}

// ConversationPatch changes a group's title, metadata or member limit.
type ConversationPatch struct {
	Title       *string        `json:"title,omitempty" maxLength:"200"`
	Metadata    map[string]any `json:"metadata,omitempty" doc:"replaces the metadata"`
	MemberLimit *int           `json:"member_limit,omitempty" minimum:"1"`
	// ActorID, when set, is the member making the change: only an owner or
	// admin may. Without it the tenant's backend acts with full authority.
	ActorID string `json:"actor_id,omitempty"`
}

// MembersInput adds members to a group.
type MembersInput struct {
	UserIDs []string `json:"user_ids" minItems:"1" maxItems:"1000"`
	Role    string   `json:"role,omitempty" enum:"admin,member" doc:"default member"`
	ActorID string   `json:"actor_id,omitempty" doc:"the member adding them (must be owner or admin); empty: the tenant's backend"`
}

// RoleInput changes a member's role.
type RoleInput struct {
	Role    string `json:"role" enum:"owner,admin,member" doc:"owner transfers ownership: the previous owner becomes admin"`
	ActorID string `json:"actor_id,omitempty" doc:"the member making the change (must be the owner); empty: the tenant's backend"`
}

// ConversationFilter narrows ListConversations.
type ConversationFilter struct {
	MemberID string
	Kind     string
	Limit    int
	Cursor   string
}

const (
	maxUserIDLen = 128
	maxTitleLen  = 200
	maxMetadata  = 8 << 10
)

// validUserID reports why id is not a user id, or "".
func validUserID(id string) string {
	switch {
	case id == "":
		return "must not be empty"
	case len(id) > maxUserIDLen:
		return "is longer than 128 bytes"
	case !utf8.ValidString(id):
		return "is not valid UTF-8"
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return "contains a control character"
	}
	return ""
}

func pairKey(a, b string) string {
	ids := []string{a, b}
	slices.Sort(ids)
	k, _ := json.Marshal(ids)
	return string(k)
}

// CreateConversation creates a conversation. A private conversation
// exists once per pair of users: creating it again returns the existing
// one with created false.
func (s *Service) CreateConversation(ctx context.Context, in NewConversation) (c Conversation, created bool, err error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return c, false, err
	}
	var v abacus.Validation
	seen := map[string]bool{}
	var members []string
	for i, id := range in.MemberIDs {
		if why := validUserID(id); why != "" {
			v.Add("body.member_ids["+itoa(i)+"]", "%s", why)
		} else if !seen[id] {
			seen[id] = true
			members = append(members, id)
		}
	}
	if len(in.Title) > maxTitleLen || !utf8.ValidString(in.Title) {
		v.Add("body.title", "must be valid UTF-8 of at most 200 bytes")
	}
	limit := s.cfg.MemberLimit
	switch in.Kind {
	case KindPrivate:
		if len(members) != 2 {
			v.Add("body.member_ids", "a private conversation has exactly two distinct members, got %d", len(members))
		}
		if in.OwnerID != "" || in.Metadata != nil || in.MemberLimit != 0 {
			v.Add("body.kind", "owner_id, metadata and member_limit are for groups only")
		}
		limit = 2
	case KindGroup:
		if in.MemberLimit > s.cfg.MemberLimit {
			v.Add("body.member_limit", "must be at most %d", s.cfg.MemberLimit)
		} else if in.MemberLimit > 0 {
			limit = in.MemberLimit
		}
		if len(members) > limit {
			v.Add("body.member_ids", "%d members are more than the member limit %d", len(members), limit)
		}
		if in.OwnerID != "" && !seen[in.OwnerID] {
			v.Add("body.owner_id", "must be one of member_ids")
		}
	default:
		v.Add("body.kind", "must be private or group")
	}
	meta, merr := metadataJSON(in.Metadata)
	if merr != "" {
		v.Add("body.metadata", "%s", merr)
	}
	if err := v.Err("invalid_conversation"); err != nil {
		return c, false, err
	}
	now := s.clock.Now()
	c = Conversation{ID: abacus.NewID("cnv"), Kind: in.Kind, Title: in.Title, Metadata: in.Metadata, MemberLimit: limit,
		MemberCount: len(members), CreatedAt: now, UpdatedAt: now}
	if c.Metadata == nil {
		c.Metadata = map[string]any{}
	}
	roles := make([]string, len(members))
	var pair *string
	if in.Kind == KindPrivate {
		k := pairKey(members[0], members[1])
		pair = &k
		roles[0], roles[1] = RoleMember, RoleMember
	} else {
		c.CreatedBy = in.OwnerID
		if c.CreatedBy == "" {
			c.CreatedBy = members[0]
		}
		for i, m := range members {
			roles[i] = RoleMember
			if m == c.CreatedBy {
				roles[i] = RoleOwner
			}
		}
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := insertConversation(ctx, tx, tenant, c, pair, meta); err != nil {
			return err
		}
		if err := insertMembers(ctx, tx, tenant, c.ID, members, roles, now); err != nil {
			return err
		}
		_, err := ConversationCreated.Record(ctx, tx, tenant, c.ID, now, ConversationEvent{
			ConversationID: c.ID, Kind: c.Kind, Title: c.Title, MemberIDs: members, CreatedAt: now})
		return err
	})
	if pair != nil && db.IsUniqueViolation(err) {
		existing, ferr := findPrivate(ctx, s.db, tenant, *pair)
		return existing, false, ferr
	}
	if err != nil {
		return Conversation{}, false, err
	}
	return c, true, nil
}

func metadataJSON(m map[string]any) (string, string) {
	if m == nil {
		return "{}", ""
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", "must be a JSON object"
	}
	if len(b) > maxMetadata {
		return "", "is larger than 8 KiB"
	}
	return string(b), ""
}

// GetConversation returns a conversation.
func (s *Service) GetConversation(ctx context.Context, id string) (Conversation, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Conversation{}, err
	}
	return getConversation(ctx, s.db, tenant, id)
}

// ListConversations lists conversations by id, those of a member (with
// the member's read state and unread count) when the filter names one.
func (s *Service) ListConversations(ctx context.Context, f ConversationFilter) (abacus.List[Conversation], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Conversation]{}, err
	}
	if f.Limit <= 0 {
		f.Limit = 20
	}
	after, err := decodeCursor(f.Cursor)
	if err != nil {
		return abacus.List[Conversation]{}, err
	}
	if f.MemberID != "" {
		if why := validUserID(f.MemberID); why != "" {
			return abacus.List[Conversation]{}, abacus.Invalid("invalid_query", "member_id %s", why).WithField("query.member_id", why)
		}
	}
	items, err := listConversations(ctx, s.db, tenant, f, after)
	if err != nil {
		return abacus.List[Conversation]{}, err
	}
	next := ""
	if len(items) > f.Limit {
		items = items[:f.Limit]
		next = encodeCursor(items[len(items)-1].ID)
	}
	return abacus.ListOf(items, next), nil
}

// UpdateConversation changes a group's title, metadata or member limit.
func (s *Service) UpdateConversation(ctx context.Context, id string, p ConversationPatch) (Conversation, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Conversation{}, err
	}
	var v abacus.Validation
	if p.Title != nil && (len(*p.Title) > maxTitleLen || !utf8.ValidString(*p.Title)) {
		v.Add("body.title", "must be valid UTF-8 of at most 200 bytes")
	}
	if p.MemberLimit != nil && (*p.MemberLimit < 1 || *p.MemberLimit > s.cfg.MemberLimit) {
		v.Add("body.member_limit", "must be between 1 and %d", s.cfg.MemberLimit)
	}
	meta, merr := metadataJSON(p.Metadata)
	if merr != "" {
		v.Add("body.metadata", "%s", merr)
	}
	if err := v.Err("invalid_conversation"); err != nil {
		return Conversation{}, err
	}
	var c Conversation
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		c, err = getConversationTx(ctx, tx, tenant, id, true)
		if err != nil {
			return err
		}
		if c.Kind != KindGroup {
			return abacus.Conflict("private_conversation", "a private conversation has no title, metadata or member limit to change")
		}
		if p.ActorID != "" {
			if err := s.requireRole(ctx, tx, tenant, id, p.ActorID, RoleOwner, RoleAdmin); err != nil {
				return err
			}
		}
		if p.Title != nil {
			c.Title = *p.Title
		}
		if p.Metadata != nil {
			c.Metadata = p.Metadata
		} else {
			meta, _ = metadataJSON(c.Metadata)
		}
		if p.MemberLimit != nil {
			if *p.MemberLimit < c.MemberCount {
				return abacus.Conflict("member_limit_below_members", "the group has %d members, more than the limit %d asked", c.MemberCount, *p.MemberLimit)
			}
			c.MemberLimit = *p.MemberLimit
		}
		c.UpdatedAt = s.clock.Now()
		return updateConversation(ctx, tx, tenant, c, meta)
	})
	return c, err
}

// requireRole checks that user is a member of conversation with one of
// roles.
func (s *Service) requireRole(ctx context.Context, q db.Querier, tenant, conv, user string, roles ...string) error {
	role, ok, err := memberRole(ctx, q, tenant, conv, user)
	if err != nil {
		return err
	}
	if !ok {
		return abacus.Errorf(abacus.KindForbidden, "not_a_member", "%s is not a member of conversation %s", user, conv)
	}
	if !slices.Contains(roles, role) {
		return abacus.Errorf(abacus.KindForbidden, "insufficient_role", "%s is %s in conversation %s; this needs %s",
			user, role, conv, strings.Join(roles, " or "))
	}
	return nil
}

// ListMembers lists a conversation's members by user id.
func (s *Service) ListMembers(ctx context.Context, conv string, limit int, cursor string) (abacus.List[ConversationMember], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[ConversationMember]{}, err
	}
	if limit <= 0 {
		limit = 100
	}
	after, err := decodeCursor(cursor)
	if err != nil {
		return abacus.List[ConversationMember]{}, err
	}
	if _, err := getConversation(ctx, s.db, tenant, conv); err != nil {
		return abacus.List[ConversationMember]{}, err
	}
	items, err := listMembers(ctx, s.db, tenant, conv, after, limit+1)
	if err != nil {
		return abacus.List[ConversationMember]{}, err
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = encodeCursor(items[len(items)-1].UserID)
	}
	return abacus.ListOf(items, next), nil
}

// AddMembers adds users to a group. Users already members keep their
// role. With an actor, only an owner or admin may add.
func (s *Service) AddMembers(ctx context.Context, conv string, in MembersInput) ([]ConversationMember, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	var v abacus.Validation
	var ids []string
	seen := map[string]bool{}
	for i, id := range in.UserIDs {
		if why := validUserID(id); why != "" {
			v.Add("body.user_ids["+itoa(i)+"]", "%s", why)
		} else if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	role := in.Role
	if role == "" {
		role = RoleMember
	}
	if role != RoleMember && role != RoleAdmin {
		v.Add("body.role", "must be admin or member")
	}
	if err := v.Err("invalid_members"); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var added []string
	var before []string
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		c, err := getConversationTx(ctx, tx, tenant, conv, true)
		if err != nil {
			return err
		}
		if c.Kind != KindGroup {
			return abacus.Conflict("private_conversation", "a private conversation's two members are fixed")
		}
		if in.ActorID != "" {
			if err := s.requireRole(ctx, tx, tenant, conv, in.ActorID, RoleOwner, RoleAdmin); err != nil {
				return err
			}
		}
		before, err = memberIDs(ctx, tx, tenant, conv)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if !slices.Contains(before, id) {
				added = append(added, id)
			}
		}
		if c.MemberCount+len(added) > c.MemberLimit {
			return abacus.Conflict("member_limit_reached", "the group has %d of %d members; %d more do not fit",
				c.MemberCount, c.MemberLimit, len(added))
		}
		if len(added) == 0 {
			return nil
		}
		roles := make([]string, len(added))
		for i := range roles {
			roles[i] = role
		}
		if err := insertMembers(ctx, tx, tenant, conv, added, roles, now); err != nil {
			return err
		}
		if err := addMemberCount(ctx, tx, tenant, conv, len(added), now); err != nil {
			return err
		}
		_, err = MembersChanged.Record(ctx, tx, tenant, conv, now, MembershipEvent{ConversationID: conv, Action: "added",
			UserIDs: added, Role: role, ActorID: in.ActorID, At: now})
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(added) > 0 {
		s.hub.publishFrame(tenant, append(before, added...), membershipFrame{Type: "membership", ConversationID: conv,
			Action: "added", UserIDs: added, Role: role, ActorID: in.ActorID})
	}
	out := make([]ConversationMember, len(added))
	for i, id := range added {
		out[i] = ConversationMember{UserID: id, Role: role, JoinedAt: now}
	}
	return out, nil
}

// RemoveMember removes user from a group; user == actor is leaving. An
// admin may remove members, only the owner may remove an admin, and the
// owner cannot be removed (it can leave: the longest-standing admin, else
// member, becomes owner).
func (s *Service) RemoveMember(ctx context.Context, conv, user, actor string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	action := "removed"
	if actor == user {
		action = "left"
	}
	var before []string
	var newOwner string
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		c, err := getConversationTx(ctx, tx, tenant, conv, true)
		if err != nil {
			return err
		}
		if c.Kind != KindGroup {
			return abacus.Conflict("private_conversation", "a private conversation's two members are fixed")
		}
		role, ok, err := memberRole(ctx, tx, tenant, conv, user)
		if err != nil {
			return err
		}
		if !ok {
			return abacus.NotFound("member", user)
		}
		if actor != "" && actor != user {
			arole, aok, err := memberRole(ctx, tx, tenant, conv, actor)
			if err != nil {
				return err
			}
			switch {
			case !aok:
				return abacus.Errorf(abacus.KindForbidden, "not_a_member", "%s is not a member of conversation %s", actor, conv)
			case role == RoleOwner:
				return abacus.Errorf(abacus.KindForbidden, "insufficient_role", "the owner cannot be removed; it can leave or hand ownership over")
			case arole == RoleMember || (arole == RoleAdmin && role == RoleAdmin):
				return abacus.Errorf(abacus.KindForbidden, "insufficient_role", "%s is %s and cannot remove a %s", actor, arole, role)
			}
		}
		before, err = memberIDs(ctx, tx, tenant, conv)
		if err != nil {
			return err
		}
		if err := deleteMember(ctx, tx, tenant, conv, user); err != nil {
			return err
		}
		if err := addMemberCount(ctx, tx, tenant, conv, -1, now); err != nil {
			return err
		}
		if role == RoleOwner {
			if newOwner, err = promoteSuccessor(ctx, tx, tenant, conv); err != nil {
				return err
			}
		}
		_, err = MembersChanged.Record(ctx, tx, tenant, conv, now, MembershipEvent{ConversationID: conv, Action: action,
			UserIDs: []string{user}, ActorID: actor, At: now})
		if err == nil && newOwner != "" {
			_, err = MembersChanged.Record(ctx, tx, tenant, conv, now, MembershipEvent{ConversationID: conv, Action: "role_changed",
				UserIDs: []string{newOwner}, Role: RoleOwner, At: now})
		}
		return err
	})
	if err != nil {
		return err
	}
	s.hub.publishFrame(tenant, before, membershipFrame{Type: "membership", ConversationID: conv, Action: action,
		UserIDs: []string{user}, ActorID: actor})
	if newOwner != "" {
		s.hub.publishFrame(tenant, before, membershipFrame{Type: "membership", ConversationID: conv, Action: "role_changed",
			UserIDs: []string{newOwner}, Role: RoleOwner})
	}
	return nil
}

// SetRole changes a member's role. Making someone owner hands ownership
// over: the previous owner becomes admin. With an actor, only the owner
// may change roles.
func (s *Service) SetRole(ctx context.Context, conv, user string, in RoleInput) (ConversationMember, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return ConversationMember{}, err
	}
	if in.Role != RoleOwner && in.Role != RoleAdmin && in.Role != RoleMember {
		return ConversationMember{}, abacus.Invalid("invalid_role", "role must be owner, admin or member").WithField("body.role", "must be owner, admin or member")
	}
	now := s.clock.Now()
	var m ConversationMember
	var members []string
	var previousOwner string
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		c, err := getConversationTx(ctx, tx, tenant, conv, true)
		if err != nil {
			return err
		}
		if c.Kind != KindGroup {
			return abacus.Conflict("private_conversation", "members of a private conversation have no roles")
		}
		if in.ActorID != "" {
			if err := s.requireRole(ctx, tx, tenant, conv, in.ActorID, RoleOwner); err != nil {
				return err
			}
		}
		m, err = getMember(ctx, tx, tenant, conv, user)
		if err != nil {
			return err
		}
		if m.Role == RoleOwner && in.Role != RoleOwner {
			return abacus.Conflict("owner_required", "a group keeps an owner: make another member owner instead")
		}
		if in.Role == RoleOwner && m.Role != RoleOwner {
			if previousOwner, err = ownerOf(ctx, tx, tenant, conv); err != nil {
				return err
			}
			if previousOwner != "" {
				if err := setMemberRole(ctx, tx, tenant, conv, previousOwner, RoleAdmin); err != nil {
					return err
				}
			}
		}
		m.Role = in.Role
		if err := setMemberRole(ctx, tx, tenant, conv, user, in.Role); err != nil {
			return err
		}
		if members, err = memberIDs(ctx, tx, tenant, conv); err != nil {
			return err
		}
		_, err = MembersChanged.Record(ctx, tx, tenant, conv, now, MembershipEvent{ConversationID: conv, Action: "role_changed",
			UserIDs: []string{user}, Role: in.Role, ActorID: in.ActorID, At: now})
		return err
	})
	if err != nil {
		return ConversationMember{}, err
	}
	if previousOwner != "" {
		s.hub.publishFrame(tenant, members, membershipFrame{Type: "membership", ConversationID: conv, Action: "role_changed",
			UserIDs: []string{previousOwner}, Role: RoleAdmin, ActorID: in.ActorID})
	}
	s.hub.publishFrame(tenant, members, membershipFrame{Type: "membership", ConversationID: conv, Action: "role_changed",
		UserIDs: []string{user}, Role: in.Role, ActorID: in.ActorID})
	return m, nil
}

func itoa(i int) string { return strconv.Itoa(i) }

func encodeCursor(k string) string { return base64.RawURLEncoding.EncodeToString([]byte(k)) }

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", abacus.Invalid("invalid_cursor", "cursor is not one this API returned").WithField("query.cursor", "not a cursor this API returned")
	}
	return string(b), nil
}
