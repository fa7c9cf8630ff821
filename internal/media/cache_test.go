package media

import (
	"context"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// checkCachedVariantNeedsNoDatabase (the last step of
// TestUploadVariantsAndAccess, sharing its set-up): once a variant was
// served, its signed URL is served from memory, fresh or stale, with the
// database closed; a stale entry is read again off the request path, so
// a deletion made on another node (straight in the database here) shows
// within metaTTL.
func checkCachedVariantNeedsNoDatabase(t *testing.T, b *bundle, d *db.DB) {
	t.Helper()
	upload := func(w int) Image {
		img, _, err := b.svc.Upload(as("ten_a", "api_key", "key_1", abacus.ScopeWrite), UploadInput{Data: jpegWithEXIF(t, marked(w, 30), 1)})
		if err != nil || img.Status != "ready" {
			t.Fatalf("upload: %+v %v", img.Status, err)
		}
		if r := b.get(t, img.Variants[Medium], ""); r.status != 200 {
			t.Fatalf("first fetch: %d %s", r.status, r.body)
		}
		return img
	}
	// age makes the cached entry of a medium stale.
	age := func(id string) {
		key := "ten_a/" + id
		e := b.svc.cache.meta(key)
		b.svc.cache.putMeta(key, &entry{tenant: e.tenant, hash: e.hash, owner: e.owner, conv: e.conv, status: e.status, rend: e.rend,
			at: time.Now().Add(-metaTTL - time.Second)})
	}

	gone, kept := upload(40), upload(41)
	if _, err := d.ExecContext(context.Background(), `UPDATE media SET deleted_at = 1 WHERE tenant_id = 'ten_a' AND id = $1`, gone.ID); err != nil {
		t.Fatal(err)
	}
	age(gone.ID)
	if r := b.get(t, gone.Variants[Medium], ""); r.status != 200 {
		t.Fatalf("stale entry: %d, want it served while it is read again", r.status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.get(t, gone.Variants[Medium], "").status != 404 {
		if time.Now().After(deadline) {
			t.Fatal("a medium deleted in the database is still served")
		}
		time.Sleep(10 * time.Millisecond)
	}

	d.Close()
	if r := b.get(t, kept.Variants[Medium], ""); r.status != 200 {
		t.Fatalf("fresh entry, no database: %d %s", r.status, r.body)
	}
	age(kept.ID)
	for range 3 {
		if r := b.get(t, kept.Variants[Medium], ""); r.status != 200 {
			t.Fatalf("stale entry, no database: %d %s", r.status, r.body)
		}
	}
}
