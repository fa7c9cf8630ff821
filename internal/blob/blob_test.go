package blob

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDirPutGetDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, err := NewDir(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "inbound/ten_1/a.orig", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "inbound/ten_1/a.orig", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, err := d.Get(ctx, "inbound/ten_1/a.orig"); err != nil || string(b) != "two" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	left, _ := filepath.Glob(filepath.Join(d.root, "inbound", "ten_1", ".put-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := d.Delete(ctx, "inbound/ten_1/a.orig"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "inbound/ten_1/a.orig"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := d.Get(ctx, "inbound/ten_1/a.orig"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "../x", "a//b", "a/./b", "/abs", `a\b`, "a b"} {
		if err := d.Put(ctx, bad, nil); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(d.root), "x")); err == nil {
		t.Error("a key escaped the directory")
	}
}
