package blob_test

import (
	"path/filepath"
	"testing"

	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/blob/blobtest"
	"github.com/abacusbilling/abacus/internal/blob/s3test"
)

// TestConformance runs the one storage suite on both backends: the local
// directory and an S3-compatible server on 127.0.0.1 (s3test).
func TestConformance(t *testing.T) {
	t.Parallel()
	t.Run("dir", func(t *testing.T) {
		t.Parallel()
		blobtest.Run(t, func(t *testing.T) blob.Store {
			d, err := blob.NewDir(filepath.Join(t.TempDir(), "objects"))
			if err != nil {
				t.Fatal(err)
			}
			return d
		})
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		blobtest.Run(t, func(t *testing.T) blob.Store { return s3test.Store(t) })
	})
}

func TestS3ConfigNamesTheKey(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg  blob.S3Config
		want string
	}{
		{blob.S3Config{Bucket: "b"}, "blob.s3_endpoint"},
		{blob.S3Config{Endpoint: "ftp://x", Bucket: "b"}, "blob.s3_endpoint"},
		{blob.S3Config{Endpoint: "http://x"}, "blob.s3_bucket"},
		{blob.S3Config{Endpoint: "http://x", Bucket: "b", Prefix: "../"}, "blob.s3_prefix"},
	} {
		err := c.cfg.Validate()
		if err == nil || len(err.Error()) < len(c.want) || err.Error()[:len(c.want)] != c.want {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
}
