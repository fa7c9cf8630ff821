package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/db"
)

// UploadInput is an image to store.
type UploadInput struct {
	Data []byte
	// OwnerID is the end user the image belongs to. An end user uploads
	// as themself (a different OwnerID is refused); the tenant's backend
	// may name one or none.
	OwnerID string
	// ConversationID limits who may fetch the image to the
	// conversation's members; the owner must be one.
	ConversationID string
}

// Upload stores an image once per tenant and its bytes, renders it in the
// worker pool and waits (up to Config.Wait) for its variants: created
// reports a new upload (false: the same bytes by the same owner for the
// same conversation, answered with the earlier one). Errors:
// CodeUnsupported, CodeCorrupt, CodeTooLarge (nothing is stored),
// forbidden (another user, or not a member), unauthorized.
func (s *Service) Upload(ctx context.Context, in UploadInput) (m Image, created bool, err error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return m, false, err
	}
	p := abacus.PrincipalFrom(ctx)
	if isEndUser(p) {
		if in.OwnerID != "" && in.OwnerID != p.ID {
			return m, false, abacus.Errorf(abacus.KindForbidden, "forbidden", "an end user uploads as themself; end_user_id names another user")
		}
		in.OwnerID = p.ID
	} else if !p.Has(abacus.ScopeWrite) {
		return m, false, abacus.Errorf(abacus.KindForbidden, "insufficient_scope", "uploading needs the write scope or an end user's access token")
	}
	if len(in.OwnerID) > 128 || len(in.ConversationID) > 64 {
		return m, false, abacus.Invalid("invalid", "end_user_id or conversation_id is too long")
	}
	if in.ConversationID != "" && in.OwnerID != "" {
		if err := s.requireMember(ctx, in.ConversationID, in.OwnerID); err != nil {
			return m, false, err
		}
	}
	st, err := s.Settings(ctx)
	if err != nil {
		return m, false, err
	}
	h, err := ReadHeader(in.Data, st.Limits)
	if err != nil {
		return m, false, err
	}
	sum := sha256.Sum256(in.Data)
	hash := hex.EncodeToString(sum[:])
	if prev, ok, err := findUpload(ctx, s.db, tenant, hash, in.OwnerID, in.ConversationID); err != nil {
		return m, false, err
	} else if ok {
		f, err := loadFile(ctx, s.db, tenant, hash)
		if err != nil {
			return m, false, err
		}
		if f.Status == "pending" {
			f, err = s.render(ctx, tenant, hash)
			if err != nil {
				return m, false, err
			}
		}
		return s.view(tenant, prev, f, viewerOf(p)), false, nil
	}
	f, err := loadFile(ctx, s.db, tenant, hash)
	if err != nil && abacus.ErrorKind(err) != abacus.KindNotFound {
		return m, false, err
	}
	if err != nil || f.Status == "pending" {
		// The upload is durable before its row exists: a crash between
		// the two leaves an unreferenced object, never a row whose bytes
		// are missing.
		if err := s.blobs.Put(ctx, blobKey(tenant, hash, "upload"), in.Data); err != nil {
			return m, false, err
		}
	}
	now := s.clock.Now()
	row := mediumRow{ID: abacus.NewID("med"), Hash: hash, OwnerID: in.OwnerID, ConversationID: in.ConversationID,
		UploadedBy: p.Kind + ":" + p.ID, CreatedAt: now}
	var ready bool
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := insertFile(ctx, tx, tenant, h, hash, int64(len(in.Data)), now); err != nil {
			return err
		}
		if err := insertMedium(ctx, tx, tenant, row); err != nil {
			return err
		}
		cur, err := loadFile(ctx, tx, tenant, hash)
		if err != nil {
			return err
		}
		f, ready = cur, cur.Status == "ready"
		w, hh := h.Oriented()
		_, err = Uploaded.Record(ctx, tx, tenant, row.ID, now, UploadedEvent{ID: row.ID, OwnerID: row.OwnerID, ConversationID: row.ConversationID,
			Format: string(h.Format), Width: w, Height: hh, Bytes: int64(len(in.Data)), CreatedAt: now})
		return err
	})
	if err != nil {
		return m, false, err
	}
	if ready {
		s.meterStored(ctx, tenant, f, []mediumRow{row})
	} else {
		f, err = s.render(ctx, tenant, hash)
		if err != nil {
			return m, false, err
		}
	}
	return s.view(tenant, row, f, viewerOf(p)), true, nil
}

// render queues (or joins) the rendering of a pending file and waits for
// it up to Config.Wait: the file as it then is (pending if the wait ran
// out), or the error that made the image unreadable.
func (s *Service) render(ctx context.Context, tenant, hash string) (file, error) {
	j := s.submit(tenant, hash, true)
	t := time.NewTimer(s.cfg.Wait)
	defer t.Stop()
	select {
	case <-j.done:
		if j.err != nil {
			return file{}, j.err
		}
	case <-t.C:
	case <-ctx.Done():
		return file{}, ctx.Err()
	}
	return loadFile(ctx, s.db, tenant, hash)
}

func isEndUser(p *abacus.Principal) bool { return p != nil && p.Kind == "end_user" }

func viewerOf(p *abacus.Principal) string {
	if isEndUser(p) {
		return p.ID
	}
	return ""
}

// requireMember refuses user unless a member of conversation.
func (s *Service) requireMember(ctx context.Context, conversation, user string) error {
	if s.members == nil {
		return abacus.Errorf(abacus.KindForbidden, "not_a_member", "conversations are not available on this node")
	}
	ok, err := s.members.IsMember(ctx, conversation, user)
	if err != nil {
		return fmt.Errorf("checking membership of %s: %w", conversation, err)
	}
	if !ok {
		return abacus.Errorf(abacus.KindForbidden, "not_a_member", "end user %s is not a member of conversation %s", user, conversation)
	}
	return nil
}

// Settings returns the tenant's media settings (defaults until set).
func (s *Service) Settings(ctx context.Context) (MediaSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return MediaSettings{}, err
	}
	st, _, err := loadSettings(ctx, s.db, tenant)
	if err != nil {
		return st, fmt.Errorf("reading media settings: %w", err)
	}
	st.Limits = st.Limits.WithDefaults()
	if st.RetentionHours <= 0 {
		st.RetentionHours = int(s.cfg.Retention / time.Hour)
	}
	return st, nil
}

// SaveSettings sets the tenant's limits and retention. Errors: invalid
// with every bad field.
func (s *Service) SaveSettings(ctx context.Context, st MediaSettings) (MediaSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return st, err
	}
	var v abacus.Validation
	if st.MaxBytes < 1 || st.MaxBytes > 1<<30 {
		v.Add("body.max_bytes", "must be 1 to %d", 1<<30)
	}
	if st.MaxPixels < 1 || st.MaxPixels > 400_000_000 {
		v.Add("body.max_pixels", "must be 1 to 400000000")
	}
	if st.MaxFrames < 1 || st.MaxFrames > 10_000 {
		v.Add("body.max_frames", "must be 1 to 10000")
	}
	if st.RetentionHours < 0 || st.RetentionHours > 24*3650 {
		v.Add("body.retention_hours", "must be 0 to 87600")
	}
	if err := v.Err("media_settings_invalid"); err != nil {
		return st, err
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error { return saveSettings(ctx, tx, tenant, st, s.clock.Now()) })
	if err != nil {
		return st, fmt.Errorf("saving media settings: %w", err)
	}
	return st, nil
}

func isMissingBlob(err error) bool { return errors.Is(err, blob.ErrNotFound) }
