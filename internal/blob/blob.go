// Package blob is the object-storage seam: documents, images and exports
// live here, their metadata in the database. A Store puts, gets and
// deletes whole objects by key; Dir keeps them in a local directory (the
// default, under the data directory); S3 keeps them in an S3-compatible
// bucket, the store a multi-node deployment shares.
//
// Keys are slash-separated paths of letters, digits and "-_.=", without
// empty, "." or ".." segments, e.g. "inbound/ten_1/3f2a….orig". A key
// is never also the folder of another ("a/b" beside "a/b/c"): the local
// directory cannot hold both. Open picks the store from Config;
// package blobtest is the conformance suite every store passes.
package blob

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/abacusbilling/abacus"
)

// Store keeps objects by key.
type Store interface {
	// Put stores data under key, replacing what was there; when it returns
	// nil the object is durable and Get returns exactly data.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the object at key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete removes the object at key; deleting a missing object is not
	// an error.
	Delete(ctx context.Context, key string) error
}

// ErrNotFound is wrapped by Get's error for a missing key.
var ErrNotFound = errors.New("blob: not found")

// CheckKey returns an *abacus.Error of KindInvalid, code "blob_key_invalid",
// when key is not a valid key (see the package doc).
func CheckKey(key string) error {
	if key == "" || len(key) > 512 {
		return abacus.Invalid("blob_key_invalid", "a blob key must have 1 to 512 characters")
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return abacus.Invalid("blob_key_invalid", "blob key %q has an empty, . or .. segment", key)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.=", r)) {
				return abacus.Invalid("blob_key_invalid", "blob key %q has the character %q; use letters, digits and -_.=", key, r)
			}
		}
	}
	return nil
}

// Dir is a Store in a local directory: one file per key. Put writes a
// temporary file, syncs it and renames it into place (then syncs the
// directory), so a crash leaves either the old object or the new one,
// never a torn one.
type Dir struct {
	root string
}

// NewDir returns a Dir rooted at root, creating it (mode 0700) if needed.
func NewDir(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating the object directory %s: %w", root, err)
	}
	return &Dir{root: root}, nil
}

func (d *Dir) path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put implements Store.
func (d *Dir) Put(_ context.Context, key string, data []byte) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, ".put-*")
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("storing %s: %w", key, err)
	}
	if df, err := os.Open(dir); err == nil {
		err = df.Sync()
		_ = df.Close()
		if err != nil {
			return fmt.Errorf("storing %s: syncing its directory: %w", key, err)
		}
	}
	return nil
}

// Get implements Store.
func (d *Dir) Get(_ context.Context, key string) ([]byte, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	return b, nil
}

// Delete implements Store.
func (d *Dir) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}
