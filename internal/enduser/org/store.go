package org

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

type rowScanner interface{ Scan(dest ...any) error }

const orgColumns = `o.id, o.name, o.customer_id, o.personal, o.domain, o.created_at, o.updated_at`

func scanOrg(r rowScanner, extra ...any) (Organization, error) {
	var o Organization
	var personal int64
	var domain sql.NullString
	var created, updated db.Time
	dest := append([]any{&o.ID, &o.Name, &o.CustomerID, &personal, &domain, &created, &updated}, extra...)
	if err := r.Scan(dest...); err != nil {
		return Organization{}, err
	}
	o.Personal, o.Domain, o.CreatedAt, o.UpdatedAt = personal == 1, domain.String, created.Time, updated.Time
	return o, nil
}

// loadOrg returns organization id of tenant. Errors: organization_not_found.
func loadOrg(ctx context.Context, q db.Querier, tenant, id string) (Organization, error) {
	o, err := scanOrg(q.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.tenant_id = $1 AND o.id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Organization{}, abacus.NotFound("organization", id)
	}
	if err != nil {
		return Organization{}, fmt.Errorf("reading organization %s: %w", id, err)
	}
	return o, nil
}

func insertOrg(ctx context.Context, tx *db.Tx, tenant string, o Organization) error {
	personal := 0
	if o.Personal {
		personal = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO organizations (id, tenant_id, name, customer_id, personal, domain, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, o.ID, tenant, o.Name, o.CustomerID, personal, nullStr(o.Domain), db.TimeOf(o.CreatedAt))
	if db.IsUniqueViolation(err) {
		return uniqueProblem(o)
	}
	if err != nil {
		return fmt.Errorf("creating organization: %w", err)
	}
	return nil
}

// uniqueProblem tells which unique rule a new or changed organization broke.
func uniqueProblem(o Organization) error {
	if o.Domain != "" {
		return abacus.Conflict("domain_taken", "another organization already claims %q", o.Domain).WithField("domain", "is claimed by another organization")
	}
	return abacus.Conflict("customer_taken", "customer %q is already linked to another organization", o.CustomerID).
		WithField("customer_id", "is linked to another organization")
}

func updateOrg(ctx context.Context, tx *db.Tx, tenant string, o Organization) error {
	_, err := tx.ExecContext(ctx, `UPDATE organizations SET name = $3, domain = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2`,
		tenant, o.ID, o.Name, nullStr(o.Domain), db.TimeOf(o.UpdatedAt))
	if db.IsUniqueViolation(err) {
		return uniqueProblem(o)
	}
	if err != nil {
		return fmt.Errorf("updating organization: %w", err)
	}
	return nil
}

func deleteOrg(ctx context.Context, tx *db.Tx, tenant, id string) error {
	for _, q := range []string{
		`DELETE FROM organization_invitations WHERE tenant_id = $1 AND org_id = $2`,
		`DELETE FROM organization_members WHERE tenant_id = $1 AND org_id = $2`,
		`DELETE FROM organizations WHERE tenant_id = $1 AND id = $2`,
	} {
		if _, err := tx.ExecContext(ctx, q, tenant, id); err != nil {
			return fmt.Errorf("deleting organization: %w", err)
		}
	}
	return nil
}

// listOrgs returns a page of the tenant's organizations after cursor.
func listOrgs(ctx context.Context, q db.Querier, tenant, cursor string, limit int) ([]Organization, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.tenant_id = $1 AND o.id > $2
		ORDER BY o.id LIMIT $3`, tenant, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("listing organizations: %w", err)
	}
	defer rows.Close()
	out := []Organization{}
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// membershipsOf returns the organizations of a user with the user's role,
// the one tokens name first (latest selected, else personal, else oldest).
func membershipsOf(ctx context.Context, q db.Querier, tenant, user string) ([]OrgMembership, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+orgColumns+`, m.role FROM organization_members m
		JOIN organizations o ON o.id = m.org_id
		WHERE m.tenant_id = $1 AND m.user_id = $2
		ORDER BY CASE WHEN m.selected_at IS NULL THEN 1 ELSE 0 END, m.selected_at DESC, o.personal DESC, m.created_at, o.id`, tenant, user)
	if err != nil {
		return nil, fmt.Errorf("listing memberships: %w", err)
	}
	defer rows.Close()
	out := []OrgMembership{}
	for rows.Next() {
		var m OrgMembership
		if m.Organization, err = scanOrg(rows, &m.Role); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// roleOf returns user's role in org ("" when not a member).
func roleOf(ctx context.Context, q db.Querier, tenant, org, user string) (string, error) {
	var role string
	err := q.QueryRowContext(ctx, `SELECT role FROM organization_members WHERE tenant_id = $1 AND org_id = $2 AND user_id = $3`,
		tenant, org, user).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading membership: %w", err)
	}
	return role, nil
}

// memberRows returns the members of org, oldest first (ids and roles).
func memberRows(ctx context.Context, q db.Querier, tenant, org string) ([]OrgMember, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id, role, created_at FROM organization_members
		WHERE tenant_id = $1 AND org_id = $2 ORDER BY created_at, user_id`, tenant, org)
	if err != nil {
		return nil, fmt.Errorf("listing members: %w", err)
	}
	defer rows.Close()
	out := []OrgMember{}
	for rows.Next() {
		m := OrgMember{OrganizationID: org}
		var created db.Time
		if err := rows.Scan(&m.UserID, &m.Role, &created); err != nil {
			return nil, err
		}
		m.CreatedAt = created.Time
		out = append(out, m)
	}
	return out, rows.Err()
}

func memberIDs(ctx context.Context, q db.Querier, tenant, org string) ([]string, error) {
	ms, err := memberRows(ctx, q, tenant, org)
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	return ids, err
}

func countOwners(ctx context.Context, q db.Querier, tenant, org string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM organization_members WHERE tenant_id = $1 AND org_id = $2 AND role = $3`,
		tenant, org, RoleOwner).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting owners: %w", err)
	}
	return n, nil
}

// insertMember adds user to org; already a member is a conflict.
func insertMember(ctx context.Context, tx *db.Tx, tenant, org, user, role string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO organization_members (tenant_id, org_id, user_id, role, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)`, tenant, org, user, role, db.TimeOf(now))
	if db.IsUniqueViolation(err) {
		return abacus.Conflict("already_member", "this end user is already a member of the organization")
	}
	if err != nil {
		return fmt.Errorf("adding member: %w", err)
	}
	return nil
}

func setRole(ctx context.Context, tx *db.Tx, tenant, org, user, role string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE organization_members SET role = $4, updated_at = $5
		WHERE tenant_id = $1 AND org_id = $2 AND user_id = $3`, tenant, org, user, role, db.TimeOf(now))
	if err != nil {
		return fmt.Errorf("changing role: %w", err)
	}
	return nil
}

func deleteMember(ctx context.Context, tx *db.Tx, tenant, org, user string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM organization_members WHERE tenant_id = $1 AND org_id = $2 AND user_id = $3`, tenant, org, user)
	if err != nil {
		return fmt.Errorf("removing member: %w", err)
	}
	return nil
}

func selectMembership(ctx context.Context, tx *db.Tx, tenant, org, user string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE organization_members SET selected_at = $4 WHERE tenant_id = $1 AND org_id = $2 AND user_id = $3`,
		tenant, org, user, db.TimeOf(now))
	if err != nil {
		return fmt.Errorf("selecting organization: %w", err)
	}
	return nil
}

const invitationColumns = `id, org_id, email, role, invited_by, created_at, expires_at, accepted_at, accepted_by, revoked_at`

func scanInvitation(r rowScanner, extra ...any) (OrgInvitation, error) {
	var in OrgInvitation
	var created, expires db.Time
	var accepted, revoked db.NullTime
	var by sql.NullString
	err := r.Scan(append([]any{&in.ID, &in.OrganizationID, &in.Email, &in.Role, &in.InvitedBy, &created, &expires, &accepted, &by, &revoked}, extra...)...)
	if err != nil {
		return OrgInvitation{}, err
	}
	in.CreatedAt, in.ExpiresAt, in.AcceptedAt, in.AcceptedBy, in.RevokedAt = created.Time, expires.Time, accepted.Ptr(), by.String, revoked.Ptr()
	return in, nil
}

func insertInvitation(ctx context.Context, tx *db.Tx, tenant string, in OrgInvitation, hash string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO organization_invitations (id, tenant_id, org_id, email, role, token_hash, invited_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, in.ID, tenant, in.OrganizationID, in.Email, in.Role, hash, in.InvitedBy,
		db.TimeOf(in.CreatedAt), db.TimeOf(in.ExpiresAt))
	if err != nil {
		return fmt.Errorf("storing invitation: %w", err)
	}
	return nil
}

// invitationByHash finds an invitation by its token's hash, in any
// tenant: the token is what names the tenant. Errors: invitation_invalid.
func invitationByHash(ctx context.Context, q db.Querier, hash string) (OrgInvitation, string, error) {
	var tenant string
	in, err := scanInvitation(q.QueryRowContext(ctx, `SELECT `+invitationColumns+`, tenant_id FROM organization_invitations WHERE token_hash = $1`, hash), &tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return OrgInvitation{}, "", errInvitationInvalid
	}
	if err != nil {
		return OrgInvitation{}, "", fmt.Errorf("reading invitation: %w", err)
	}
	return in, tenant, nil
}

func loadInvitation(ctx context.Context, q db.Querier, tenant, org, id string) (OrgInvitation, error) {
	in, err := scanInvitation(q.QueryRowContext(ctx, `SELECT `+invitationColumns+` FROM organization_invitations
		WHERE tenant_id = $1 AND org_id = $2 AND id = $3`, tenant, org, id))
	if errors.Is(err, sql.ErrNoRows) {
		return OrgInvitation{}, abacus.NotFound("invitation", id)
	}
	if err != nil {
		return OrgInvitation{}, fmt.Errorf("reading invitation: %w", err)
	}
	return in, nil
}

func listInvitations(ctx context.Context, q db.Querier, tenant, org string) ([]OrgInvitation, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+invitationColumns+` FROM organization_invitations
		WHERE tenant_id = $1 AND org_id = $2 ORDER BY id DESC LIMIT 500`, tenant, org)
	if err != nil {
		return nil, fmt.Errorf("listing invitations: %w", err)
	}
	defer rows.Close()
	out := []OrgInvitation{}
	for rows.Next() {
		in, err := scanInvitation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// markInvitation sets accepted_at/accepted_by or revoked_at on a pending
// invitation; false when it was no longer pending (a race lost).
func markInvitation(ctx context.Context, tx *db.Tx, id, column, by string, now time.Time) (bool, error) {
	set := column + ` = $2`
	args := []any{id, db.TimeOf(now)}
	if by != "" {
		set += `, accepted_by = $3`
		args = append(args, by)
	}
	res, err := tx.ExecContext(ctx, `UPDATE organization_invitations SET `+set+`
		WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL`, args...)
	if err != nil {
		return false, fmt.Errorf("updating invitation: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func normDomain(d string) string {
	return strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(d), "@")))
}

// lockMembers returns the members of org, their rows locked on
// PostgreSQL so that sign-ins under the organization's device limit run
// one at a time (SQLite's one writer already does).
func lockMembers(ctx context.Context, tx *db.Tx, tenant, org string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT user_id FROM organization_members WHERE tenant_id = $1 AND org_id = $2
		ORDER BY user_id`+tx.LockClause(" FOR UPDATE"), tenant, org)
	if err != nil {
		return nil, fmt.Errorf("locking members: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// lockMember takes the row lock of one member (a per-user limit) on
// PostgreSQL; on SQLite it costs no query.
func lockMember(ctx context.Context, tx *db.Tx, org, user string) error {
	return lockRow(ctx, tx, `SELECT org_id FROM organization_members WHERE org_id = $1 AND user_id = $2`, org, user)
}

func lockRow(ctx context.Context, tx *db.Tx, query string, args ...any) error {
	lock := tx.LockClause(" FOR UPDATE")
	if lock == "" {
		return nil
	}
	var id string
	if err := tx.QueryRowContext(ctx, query+lock, args...).Scan(&id); err != nil {
		return fmt.Errorf("locking for the device limit: %w", err)
	}
	return nil
}

// orgOfCustomer returns the organization billed as customer ("" for none).
func orgOfCustomer(ctx context.Context, q db.Querier, tenant, customer string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM organizations WHERE tenant_id = $1 AND customer_id = $2`, tenant, customer).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the organization of customer %s: %w", customer, err)
	}
	return id, nil
}
