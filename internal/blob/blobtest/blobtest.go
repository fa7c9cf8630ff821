// Package blobtest is the storage conformance suite: every blob.Store
// (the local directory, S3-compatible buckets) must pass Run. Only tests
// import it.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
)

// Run checks the Store contract on stores made by open (each call a
// fresh, empty store).
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	t.Run("PutGetReplace", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "media/ten_1/a/orig", []byte("one"))
		mustGet(t, s, "media/ten_1/a/orig", []byte("one"))
		mustPut(t, s, "media/ten_1/a/orig", []byte("two"))
		mustGet(t, s, "media/ten_1/a/orig", []byte("two"))
	})
	t.Run("EmptyAndBinary", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "e/empty", nil)
		mustGet(t, s, "e/empty", []byte{})
		bin := make([]byte, 256)
		for i := range bin {
			bin[i] = byte(i)
		}
		mustPut(t, s, "e/bin.dat", bin)
		mustGet(t, s, "e/bin.dat", bin)
	})
	t.Run("Large", func(t *testing.T) {
		s := open(t)
		big := make([]byte, 6<<20+123) // above S3's 5 MiB multipart threshold
		_, _ = rand.Read(big)
		mustPut(t, s, "big/x.bin", big)
		mustGet(t, s, "big/x.bin", big)
	})
	t.Run("MissingAndDelete", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, "no/such/key"); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Get of a missing key = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "no/such/key"); err != nil {
			t.Fatalf("Delete of a missing key = %v, want nil", err)
		}
		mustPut(t, s, "d/k", []byte("x"))
		mustPut(t, s, "d/k2", []byte("y"))
		if err := s.Delete(ctx, "d/k"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "d/k"); err != nil {
			t.Fatalf("deleting twice: %v", err)
		}
		if _, err := s.Get(ctx, "d/k"); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
		}
		mustGet(t, s, "d/k2", []byte("y")) // a neighbour is untouched
	})
	t.Run("KeysAreDistinct", func(t *testing.T) {
		s := open(t)
		// Keys that differ only in case, a suffix or a segment boundary
		// are different objects. (A key that is a folder of another, "k/a"
		// beside "k/a/b", is outside the contract: see the package doc of
		// blob.)
		keys := []string{"k/a", "k/A", "k/a.b", "k/ab", "ka", "kb/a"}
		for i, k := range keys {
			mustPut(t, s, k, []byte(fmt.Sprint(i)))
		}
		for i, k := range keys {
			mustGet(t, s, k, []byte(fmt.Sprint(i)))
		}
	})
	t.Run("BadKeysRefused", func(t *testing.T) {
		s := open(t)
		for _, bad := range []string{"", "../x", "a//b", "a/./b", "/abs", `a\b`, "a b", "a/", "a?b", "a%2fb"} {
			err := s.Put(ctx, bad, []byte("x"))
			if e, ok := abacus.AsError(err); !ok || e.Code != "blob_key_invalid" {
				t.Errorf("Put(%q) = %v, want blob_key_invalid", bad, err)
			}
			if _, err := s.Get(ctx, bad); err == nil || errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Get(%q) = %v, want blob_key_invalid", bad, err)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 16 {
			wg.Go(func() {
				k := fmt.Sprintf("c/%d", i)
				v := bytes.Repeat([]byte{byte(i)}, 1000+i)
				if err := s.Put(ctx, k, v); err != nil {
					errs <- err
					return
				}
				got, err := s.Get(ctx, k)
				if err != nil {
					errs <- err
				} else if !bytes.Equal(got, v) {
					errs <- fmt.Errorf("%s: read %d bytes back, want %d", k, len(got), len(v))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "x/k", []byte("kept"))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		// A store may finish what it started before looking at the
		// context; it must never leave a torn object.
		_ = s.Put(cctx, "x/k", bytes.Repeat([]byte("n"), 1<<20))
		got, err := s.Get(ctx, "x/k")
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "kept" && !bytes.Equal(got, bytes.Repeat([]byte("n"), 1<<20)) {
			t.Fatalf("after a cancelled Put the object is %d bytes of neither version", len(got))
		}
	})
}

func mustPut(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, data); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func mustGet(t *testing.T, s blob.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%s) = %d bytes, want %d (%q…)", key, len(got), len(want), got[:min(len(got), 16)])
	}
}
