package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// job is the rendering of one file; waiters share it.
type job struct {
	tenant, hash string
	done         chan struct{}
	err          error
}

// submit returns the rendering of (tenant, hash), queueing it unless one
// is in flight. When the queue is full the file stays pending and the
// sweeper renders it later (the returned job then never finishes before
// the caller's wait runs out).
func (s *Service) submit(tenant, hash string, _ bool) *job {
	key := tenant + "/" + hash
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.inflight[key]; ok {
		return j
	}
	j := &job{tenant: tenant, hash: hash, done: make(chan struct{})}
	select {
	case s.jobs <- j:
		s.inflight[key] = j
	default:
		s.log.Warn("media rendering queue full: left pending for the sweeper", "tenant", tenant, "hash", hash)
	}
	return j
}

func (s *Service) finish(j *job, err error) {
	s.mu.Lock()
	delete(s.inflight, j.tenant+"/"+j.hash)
	s.mu.Unlock()
	j.err = err
	close(j.done)
}

// Run renders queued files with Config.Workers workers, renders files a
// crash or a full queue left pending (at once on start, then those
// untouched for Config.Lease), erases deleted media whose retention
// ended, and sends the served bytes to metering, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-s.jobs:
					s.finish(j, s.process(ctx, j.tenant, j.hash))
				}
			}
		})
	}
	started := s.clock.Now()
	s.sweep(ctx, started.Add(time.Microsecond))
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.flushServed(fctx)
			cancel()
			return nil
		case <-tick.C:
			s.sweep(ctx, s.clock.Now().Add(-s.cfg.Lease))
			if n%5 == 0 {
				s.flushServed(ctx)
				if err := s.Purge(ctx); err != nil {
					s.log.Error("erasing deleted media", "err", err)
				}
			}
		}
	}
}

// sweep claims pending files untouched since before and queues them.
func (s *Service) sweep(ctx context.Context, before time.Time) {
	refs, err := stalePending(ctx, s.db, before, 100)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("listing pending media", "err", err)
		}
		return
	}
	for _, r := range refs {
		ok, err := claimPending(ctx, s.db, r.Tenant, r.Hash, r.UpdatedAt, s.clock.Now())
		if err != nil {
			s.log.Error("claiming pending media", "tenant", r.Tenant, "hash", r.Hash, "err", err)
			continue
		}
		if ok {
			s.submit(r.Tenant, r.Hash, false)
		}
	}
}

// process renders a pending file: every rendition is put in the object
// store, then the file turns ready in one update (so it is never half
// visible). An unreadable image removes the file and its uploads.
func (s *Service) process(ctx context.Context, tenant, hash string) error {
	sys := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", ID: "media"})
	f, err := loadFile(sys, s.db, tenant, hash)
	if err != nil {
		if abacus.ErrorKind(err) == abacus.KindNotFound {
			return nil // refused meanwhile
		}
		return err
	}
	if f.Status != "pending" {
		return nil
	}
	data, err := s.blobs.Get(sys, blobKey(tenant, hash, "upload"))
	if isMissingBlob(err) {
		s.log.Error("a pending image's upload is missing: the upload is removed", "tenant", tenant, "hash", hash)
		return s.refuse(sys, tenant, hash, abacus.Errorf(abacus.KindUnavailable, "media_lost", "the upload was lost; upload the image again"))
	}
	if err != nil {
		_ = noteFailure(sys, s.db, tenant, hash, err.Error())
		return err
	}
	h, err := ReadHeader(data, Limits{MaxBytes: 1 << 40, MaxPixels: 1 << 40, MaxFrames: 1 << 30})
	var rends []Rendition
	if err == nil {
		rends, err = Render(data, h, s.cfg.Sizes)
	}
	if err != nil {
		if abacus.ErrorKind(err) == abacus.KindInvalid {
			return s.refuse(sys, tenant, hash, err)
		}
		_ = noteFailure(sys, s.db, tenant, hash, err.Error())
		return err
	}
	meta := map[string]renditionMeta{}
	var stored int64
	for _, r := range rends {
		if err := s.blobs.Put(sys, blobKey(tenant, hash, r.Name), r.Data); err != nil {
			_ = noteFailure(sys, s.db, tenant, hash, err.Error())
			return err
		}
		sum := sha256.Sum256(r.Data)
		meta[r.Name] = renditionMeta{ContentType: r.ContentType, Width: r.Width, Height: r.Height, Bytes: int64(len(r.Data)),
			ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		stored += int64(len(r.Data))
	}
	var uploads []mediumRow
	err = s.db.InTx(sys, func(tx *db.Tx) error {
		ok, err := markReady(sys, tx, tenant, hash, meta, stored, s.clock.Now())
		if err != nil || !ok {
			return err
		}
		uploads, err = uploadsOf(sys, tx, tenant, hash)
		return err
	})
	if err != nil {
		return err
	}
	if err := s.blobs.Delete(sys, blobKey(tenant, hash, "upload")); err != nil {
		s.log.Warn("deleting a rendered upload", "tenant", tenant, "hash", hash, "err", err)
	}
	f.Renditions, f.StoredBytes, f.Status = meta, stored, "ready"
	s.meterStored(sys, tenant, f, uploads)
	return nil
}

// refuse removes an unreadable file, its uploads and its bytes.
func (s *Service) refuse(ctx context.Context, tenant, hash string, reason error) error {
	err := s.db.InTx(ctx, func(tx *db.Tx) error { return deleteUploadsOf(ctx, tx, tenant, hash) })
	if err != nil {
		return fmt.Errorf("removing an unreadable image: %w", err)
	}
	_ = s.blobs.Delete(ctx, blobKey(tenant, hash, "upload"))
	return reason
}

// uploadsOf lists the live media of a file.
func uploadsOf(ctx context.Context, q db.Querier, tenant, hash string) ([]mediumRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+mediumCols+` FROM media WHERE tenant_id = $1 AND hash = $2 AND deleted_at IS NULL`, tenant, hash)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []mediumRow
	for rows.Next() {
		m, err := scanMedium(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
