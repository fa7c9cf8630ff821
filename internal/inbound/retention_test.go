package inbound

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// TestRetentionKeepsTheOriginalImmutable: a document is kept for the
// tenant's retention at the time it was received (10 years by default);
// before that it cannot be deleted, a changed setting does not shorten
// it, and an original altered in the object store is never served as the
// original; after it, deleting removes the row and the object.
func TestRetentionKeepsTheOriginalImmutable(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC))
		root := filepath.Join(t.TempDir(), "objects")
		dir, err := blob.NewDir(root)
		if err != nil {
			t.Fatal(err)
		}
		s := NewService(d, dir, clock, discard)
		ctx := tenantCtx("ten_a")
		if st, err := s.GetSettings(ctx); err != nil || st.RetentionYears != DefaultRetentionYears {
			t.Fatalf("default settings: %v %+v", err, st)
		}
		doc, _, err := s.Receive(ctx, example(t, "examples/invoice-saas-de.xml"), SourceAPI)
		if err != nil || !doc.RetainUntil.Equal(time.Date(2036, 11, 2, 9, 30, 0, 0, time.UTC)) {
			t.Fatalf("Receive: %v retain until %v", err, doc.RetainUntil)
		}
		if _, err := s.SetSettings(ctx, DocumentSettingsInput{RetentionYears: 0}); abacus.ErrorKind(err) != abacus.KindInvalid {
			t.Fatalf("0 years: %v", err)
		}
		if st, err := s.SetSettings(ctx, DocumentSettingsInput{RetentionYears: 1}); err != nil || st.RetentionYears != 1 {
			t.Fatalf("SetSettings: %v %+v", err, st)
		}
		if got, _ := s.Get(ctx, doc.ID); !got.RetainUntil.Equal(doc.RetainUntil) {
			t.Fatalf("a shorter setting changed a stored document's retention to %v", got.RetainUntil)
		}
		later, _, err := s.Receive(ctx, example(t, "examples/invoice-mixed-rates-fr.xml"), SourceAPI)
		if err != nil || !later.RetainUntil.Equal(time.Date(2027, 11, 2, 9, 30, 0, 0, time.UTC)) {
			t.Fatalf("after the change: %v retain until %v", err, later.RetainUntil)
		}
		clock.Advance(366 * 24 * time.Hour)
		if err := s.Delete(ctx, doc.ID); abacus.ErrorKind(err) != abacus.KindConflict {
			t.Fatalf("Delete within retention: %v, want retention_active", err)
		}
		if err := s.Delete(tenantCtx("ten_b"), later.ID); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("another tenant deleted: %v", err)
		}
		if err := s.Delete(ctx, later.ID); err != nil {
			t.Fatalf("Delete after retention: %v", err)
		}
		if _, err := s.Get(ctx, later.ID); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("deleted document still there: %v", err)
		}
		if _, err := dir.Get(context.Background(), later.blobKey); err == nil {
			t.Fatal("the deleted document's original is still in the object store")
		}
		// Tamper with the kept original behind Abacus's back.
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(doc.blobKey)), []byte("<Invoice/>"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Original(ctx, doc.ID); err == nil {
			t.Fatal("an altered original was served")
		}
	})
}
