package blob

import (
	"context"
	"path/filepath"
)

// Config selects the object store: S3 when S3.Endpoint is set, else a
// directory ("objects" under the data directory).
type Config struct {
	// Dir is the local directory (used when S3.Endpoint is empty).
	Dir string
	S3  S3Config
}

// Open returns the Store cfg selects.
func Open(ctx context.Context, cfg Config) (Store, error) {
	if cfg.S3.Endpoint != "" {
		return NewS3(ctx, cfg.S3)
	}
	return NewDir(cfg.Dir)
}

// DirUnder is the default object directory of a data directory.
func DirUnder(dataDir string) string { return filepath.Join(dataDir, "objects") }
