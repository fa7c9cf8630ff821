package media

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Codes of fetching problems.
const (
	CodeURLInvalid  = "media_url_invalid" // a signature that does not match
	CodeURLExpired  = "media_url_expired" // a signed URL past its expiry
	CodeProcessing  = "media_processing"  // variants not rendered yet: retry
	CodeNotAMember  = "not_a_member"      // the caller may not see the conversation's media
	CodeBadVariant  = "media_variant_invalid"
	signatureLength = 22 // base64url characters of the truncated HMAC (132 bits)
)

// sign returns the signature of a URL for tenant's medium id, variant,
// viewer and expiry.
func (s *Service) sign(tenant, id, variant, viewer string, exp int64) string {
	mac := hmac.New(sha256.New, s.cfg.SigningKey)
	mac.Write([]byte(tenant + "\x00" + id + "\x00" + variant + "\x00" + viewer + "\x00" + strconv.FormatInt(exp, 10)))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))[:signatureLength]
}

// URL returns a signed URL of a variant valid until exp.
func (s *Service) URL(tenant, id, variant, viewer string, exp time.Time) string {
	e := exp.Unix()
	q := url.Values{"variant": {variant}, "t": {tenant}, "exp": {strconv.FormatInt(e, 10)}, "sig": {s.sign(tenant, id, variant, viewer, e)}}
	if viewer != "" {
		q.Set("u", viewer)
	}
	return s.cfg.BaseURL + "/api/v1/media/" + id + "/content?" + q.Encode()
}

// view is the API shape of a medium with URLs signed for viewer.
func (s *Service) view(tenant string, m mediumRow, f file, viewer string) Image {
	exp := s.clock.Now().Add(s.cfg.URLTTL).Truncate(time.Second)
	out := Image{ID: m.ID, Format: string(f.Format), Width: f.Width, Height: f.Height, Bytes: f.UploadBytes, Status: f.Status,
		OwnerID: m.OwnerID, ConversationID: m.ConversationID, CreatedAt: m.CreatedAt.UTC(), ExpiresAt: exp.UTC(), Variants: map[string]string{}}
	out.ContentType = "image/png"
	if f.Format == JPEG {
		out.ContentType = "image/jpeg"
	}
	if r, ok := f.Renditions[Large]; ok {
		out.ContentType = r.ContentType
	}
	for _, v := range VariantNames {
		out.Variants[v] = s.URL(tenant, m.ID, v, viewer, exp)
	}
	return out
}

// entry is what serving a medium needs, cached per node.
type entry struct {
	tenant, hash, owner, conv, status string
	rend                              map[string]renditionMeta
	at                                time.Time
	refreshing                        atomic.Bool
}

// metaTTL bounds how long another node's deletion may go unseen here
// (plus one read of the database); metaMaxAge is how old an entry may get
// while the database does not answer before requests wait for it again.
const (
	metaTTL    = 5 * time.Second
	metaMaxAge = 60 * time.Second
)

// lookup returns a live medium's entry. A cached one is returned at once:
// when older than metaTTL one background read refreshes it (and drops it
// if the medium was deleted meanwhile), so a hot medium's requests never
// wait on the database; a signed URL carries the rest of what authorises
// it.
func (s *Service) lookup(ctx context.Context, tenant, id string) (*entry, error) {
	key := tenant + "/" + id
	if e := s.cache.meta(key); e != nil {
		age := time.Since(e.at)
		if age < metaTTL {
			return e, nil
		}
		if age < metaMaxAge {
			if e.refreshing.CompareAndSwap(false, true) {
				go s.refresh(e, key, tenant, id)
			}
			return e, nil
		}
	}
	return s.load(ctx, key, tenant, id)
}

// load reads a medium's entry from the database and caches it once ready.
func (s *Service) load(ctx context.Context, key, tenant, id string) (*entry, error) {
	m, err := loadMedium(ctx, s.db, tenant, id)
	if err != nil {
		return nil, err
	}
	f, err := loadFile(ctx, s.db, tenant, m.Hash)
	if err != nil {
		return nil, err
	}
	e := &entry{tenant: tenant, hash: m.Hash, owner: m.OwnerID, conv: m.ConversationID, status: f.Status, rend: f.Renditions, at: time.Now()}
	if f.Status == "ready" {
		s.cache.putMeta(key, e)
	}
	return e, nil
}

// refresh reads a stale entry again off the request path.
func (s *Service) refresh(old *entry, key, tenant, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", ID: "media"})
	_, err := s.load(ctx, key, tenant, id)
	switch {
	case abacus.ErrorKind(err) == abacus.KindNotFound:
		s.cache.dropMeta(key)
	case err != nil:
		s.log.Warn("refreshing a cached medium; served from the cache meanwhile", "tenant", tenant, "medium", id, "err", err)
		old.refreshing.Store(false)
	}
}

// authorize lets staff with the read scope, the owner, anyone in the
// tenant for media outside conversations, and the conversation's members.
func (s *Service) authorize(ctx context.Context, p *abacus.Principal, e *entry) error {
	if p == nil {
		return abacus.Errorf(abacus.KindUnauthorized, "unauthenticated", "send Authorization: Bearer <access token or api key>, or use a signed URL")
	}
	if !isEndUser(p) {
		if p.Has(abacus.ScopeRead) {
			return nil
		}
		return abacus.Errorf(abacus.KindForbidden, "insufficient_scope", "these credentials lack the read scope")
	}
	if e.owner == p.ID || e.conv == "" {
		return nil
	}
	return s.requireMember(ctx, e.conv, p.ID)
}

// Get returns a medium with URLs signed for the caller, who must be
// allowed to see it. Errors: not_found, forbidden (not_a_member).
func (s *Service) Get(ctx context.Context, id string) (Image, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Image{}, err
	}
	m, err := loadMedium(ctx, s.db, tenant, id)
	if err != nil {
		return Image{}, err
	}
	f, err := loadFile(ctx, s.db, tenant, m.Hash)
	if err != nil {
		return Image{}, err
	}
	p := abacus.PrincipalFrom(ctx)
	if err := s.authorize(ctx, p, &entry{owner: m.OwnerID, conv: m.ConversationID}); err != nil {
		return Image{}, err
	}
	return s.view(tenant, m, f, viewerOf(p)), nil
}

// pickVariant names the variant a request asks for: variant=, else the
// smallest whose longer side reaches w=, else the original.
func pickVariant(q url.Values, rend map[string]renditionMeta) (string, error) {
	if v := q.Get("variant"); v != "" {
		for _, n := range VariantNames {
			if n == v {
				return v, nil
			}
		}
		return "", abacus.Invalid(CodeBadVariant, "variant %q is not one of thumbnail, medium, large, original", v).WithField("query.variant", "unknown variant")
	}
	if w := q.Get("w"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 || n > 100_000 {
			return "", abacus.Invalid(CodeBadVariant, "w must be a width in pixels, 1 to 100000").WithField("query.w", "not a width")
		}
		for _, v := range VariantNames {
			if r, ok := rend[v]; ok && max(r.Width, r.Height) >= n {
				return v, nil
			}
		}
	}
	return Original, nil
}

// ServeContent answers GET /api/v1/media/{id}/content: a signed URL (t,
// exp, u, sig) or a caller allowed to see the medium gets the variant's
// bytes with a strong ETag and a year of caching (a variant's bytes never
// change); If-None-Match answers 304.
func (s *Service) ServeContent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	q := r.URL.Query()
	var tenant, viewer string
	signed := q.Has("sig")
	if signed {
		tenant, viewer = q.Get("t"), q.Get("u")
		exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
		variant := q.Get("variant")
		if err != nil || tenant == "" || !hmac.Equal([]byte(q.Get("sig")), []byte(s.sign(tenant, id, variant, viewer, exp))) {
			s.fail(w, r, abacus.Errorf(abacus.KindForbidden, CodeURLInvalid, "this media URL's signature does not match; ask for a new URL").WithField("query.sig", "does not match"))
			return
		}
		if s.clock.Now().Unix() >= exp {
			s.fail(w, r, abacus.Errorf(abacus.KindForbidden, CodeURLExpired, "this media URL expired at %s; ask for a new URL", time.Unix(exp, 0).UTC().Format(time.RFC3339)).
				WithField("query.exp", "expired"))
			return
		}
		ctx = abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", ID: "media"})
	} else {
		p := abacus.PrincipalFrom(ctx)
		if p == nil {
			s.fail(w, r, abacus.Errorf(abacus.KindUnauthorized, "unauthenticated", "send Authorization: Bearer <access token or api key>, or use a signed URL"))
			return
		}
		tenant, viewer = p.TenantID, viewerOf(p)
	}
	e, err := s.lookup(ctx, tenant, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !signed {
		if err := s.authorize(ctx, abacus.PrincipalFrom(ctx), e); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if e.status != "ready" {
		pe := abacus.Errorf(abacus.KindConflict, CodeProcessing, "the image's variants are being made; retry in a second")
		pe.RetryAfter = 1
		s.fail(w, r, pe)
		return
	}
	variant, err := pickVariant(q, e.rend)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	meta, ok := e.rend[variant]
	if !ok {
		s.fail(w, r, abacus.NotFound("media_variant", variant))
		return
	}
	h := w.Header()
	h.Set("ETag", meta.ETag)
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, meta.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	key := blobKey(tenant, e.hash, variant)
	data := s.cache.bytes(key)
	if data == nil {
		data, err = s.blobs.Get(ctx, key)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.cache.putBytes(key, data)
	}
	h.Set("Content-Type", meta.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
	subject := viewer
	if subject == "" {
		subject = "tenant"
	}
	s.served.add(tenant, subject, int64(len(data)))
}

func etagMatch(header, etag string) bool {
	for _, part := range splitComma(header) {
		if part == etag || part == "*" || part == "W/"+etag {
			return true
		}
	}
	return false
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			part := s[start:i]
			for len(part) > 0 && part[0] == ' ' {
				part = part[1:]
			}
			for len(part) > 0 && part[len(part)-1] == ' ' {
				part = part[:len(part)-1]
			}
			if part != "" {
				out = append(out, part)
			}
			start = i + 1
		}
	}
	return out
}

// cache keeps served renditions' bytes (least recently used out first,
// bounded in bytes) and media entries.
type cache struct {
	mu    sync.Mutex
	limit int64
	size  int64
	order *list.List // of *cached, most recent first
	items map[string]*list.Element
	metas map[string]*entry
}

type cached struct {
	key  string
	data []byte
}

func newCache(limit int64) *cache {
	return &cache{limit: limit, order: list.New(), items: map[string]*list.Element{}, metas: map[string]*entry{}}
}

func (c *cache) bytes(key string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*cached).data
	}
	return nil
}

func (c *cache) putBytes(key string, data []byte) {
	if int64(len(data)) > c.limit/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.order.PushFront(&cached{key: key, data: data})
	c.size += int64(len(data))
	for c.size > c.limit {
		el := c.order.Back()
		v := el.Value.(*cached)
		c.order.Remove(el)
		delete(c.items, v.key)
		c.size -= int64(len(v.data))
	}
}

func (c *cache) meta(key string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.metas[key]
}

func (c *cache) putMeta(key string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.metas) >= 100_000 {
		clear(c.metas)
	}
	c.metas[key] = e
}

func (c *cache) dropMeta(key string) {
	c.mu.Lock()
	delete(c.metas, key)
	c.mu.Unlock()
}

// servedCounter sums served bytes per tenant and subject between
// flushes, and keeps usage not yet accepted by metering.
type servedCounter struct {
	mu      sync.Mutex
	node    string
	seq     int64
	counts  map[[2]string]int64
	pending map[string][]Usage // by tenant: unsent, retried with the same ids
}

func newServedCounter() *servedCounter {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &servedCounter{node: hex.EncodeToString(b), counts: map[[2]string]int64{}, pending: map[string][]Usage{}}
}

func (c *servedCounter) add(tenant, subject string, n int64) {
	c.mu.Lock()
	c.counts[[2]string{tenant, subject}] += n
	c.mu.Unlock()
}

func (c *servedCounter) enqueue(tenant string, us ...Usage) {
	c.mu.Lock()
	c.pending[tenant] = append(c.pending[tenant], us...)
	c.mu.Unlock()
}

// take moves the counts into pending usage and returns all pending.
func (c *servedCounter) take(now time.Time) map[string][]Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range c.counts {
		c.seq++
		c.pending[k[0]] = append(c.pending[k[0]], Usage{ID: "served-" + c.node + "-" + strconv.FormatInt(c.seq, 10), Type: EventServed,
			Subject: k[1], Bytes: n, Time: now})
	}
	clear(c.counts)
	out := c.pending
	c.pending = map[string][]Usage{}
	return out
}

// FlushUsage sends the stored and served bytes counted so far to
// metering; what metering refuses is kept and sent again with the same
// ids (so it is counted once). Run calls it every ten seconds.
func (s *Service) FlushUsage(ctx context.Context) error {
	all := s.served.take(s.clock.Now())
	if s.meter == nil {
		return nil
	}
	var first error
	for tenant, us := range all {
		if err := s.meter.Record(ctx, tenant, us); err != nil {
			s.served.enqueue(tenant, us...)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

func (s *Service) flushServed(ctx context.Context) {
	if err := s.FlushUsage(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("sending media usage to metering; kept for the next round", "err", err)
	}
}

// meterStored queues the stored bytes of new uploads of a ready file.
func (s *Service) meterStored(_ context.Context, tenant string, f file, uploads []mediumRow) {
	for _, m := range uploads {
		subject := m.OwnerID
		if subject == "" {
			subject = "tenant"
		}
		s.served.enqueue(tenant, Usage{ID: "stored-" + m.ID, Type: EventStored, Subject: subject, Bytes: f.StoredBytes, Time: m.CreatedAt})
	}
}

// Delete hides a medium at once and erases its bytes once the tenant's
// retention window has passed (and no other upload uses them). The
// owner (an end user) or staff with the write scope may delete. Errors:
// not_found, forbidden.
func (s *Service) Delete(ctx context.Context, id string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	m, err := loadMedium(ctx, s.db, tenant, id)
	if err != nil {
		return err
	}
	p := abacus.PrincipalFrom(ctx)
	if isEndUser(p) && m.OwnerID != p.ID || !isEndUser(p) && !p.Has(abacus.ScopeWrite) {
		return abacus.Errorf(abacus.KindForbidden, "forbidden", "only the image's owner or staff with the write scope may delete it")
	}
	return s.deleteWhere(ctx, tenant, "id", id, "api")
}

// DeleteOwnedBy hides every medium an end user owns (the user was
// deleted) and schedules their bytes like Delete.
func (s *Service) DeleteOwnedBy(ctx context.Context, tenant, user string) error {
	ctx = abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", ID: "media"})
	return s.deleteWhere(ctx, tenant, "owner_id", user, "owner_deleted")
}

// DeleteAttached deletes, like Delete, the media among ids that owner
// uploaded: a message of theirs carrying them was deleted. Media owned by
// someone else (or nobody), or already deleted, are left alone, so a
// message cannot take another's image with it.
func (s *Service) DeleteAttached(ctx context.Context, tenant, owner string, ids []string) error {
	if owner == "" {
		return nil
	}
	ctx = abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", ID: "media"})
	for _, id := range ids {
		m, err := loadMedium(ctx, s.db, tenant, id)
		if abacus.ErrorKind(err) == abacus.KindNotFound || err == nil && m.OwnerID != owner {
			continue
		}
		if err != nil {
			return err
		}
		if err := s.deleteWhere(ctx, tenant, "id", id, "message_deleted"); err != nil {
			return err
		}
	}
	return nil
}

// IDFromURL returns the id of the medium a media URL names (signed or
// not, absolute or a path), or "" when it names none.
func IDFromURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	_, rest, ok := strings.Cut(u.Path, "/api/v1/media/")
	id, _, _ := strings.Cut(rest, "/")
	if !ok || !strings.HasPrefix(id, "med_") {
		return ""
	}
	return id
}

func (s *Service) deleteWhere(ctx context.Context, tenant, column, value, reason string) error {
	st, err := s.Settings(ctx)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	due := now.Add(time.Duration(st.RetentionHours) * time.Hour)
	var hidden []mediumRow
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		hidden, err = markDeleted(ctx, tx, tenant, column, value, now, due)
		if err != nil {
			return err
		}
		for _, m := range hidden {
			if _, err := Deleted.Record(ctx, tx, tenant, m.ID, now, DeletedEvent{ID: m.ID, OwnerID: m.OwnerID, ConversationID: m.ConversationID,
				Reason: reason, EraseAt: due.UTC(), DeletedAt: now.UTC()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range hidden {
		s.cache.dropMeta(tenant + "/" + m.ID)
	}
	return nil
}

// Purge erases the bytes of deleted media whose retention ended (Run
// calls it); a file's bytes go with its last upload.
func (s *Service) Purge(ctx context.Context) error {
	due, err := dueDeletions(ctx, s.db, s.clock.Now(), 200)
	if err != nil {
		return err
	}
	for _, r := range due {
		sys := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: r.Tenant, Kind: "system", ID: "media"})
		f, ferr := loadFile(sys, s.db, r.Tenant, r.Hash)
		var last bool
		err := s.db.InTx(sys, func(tx *db.Tx) error {
			last, err = purgeMedium(sys, tx, r)
			return err
		})
		if err != nil {
			return err
		}
		if ferr == nil {
			subject := r.Owner
			if subject == "" {
				subject = "tenant"
			}
			s.served.enqueue(r.Tenant, Usage{ID: "freed-" + r.ID, Type: EventStored, Subject: subject, Bytes: -f.StoredBytes, Time: s.clock.Now()})
		}
		if last {
			for _, name := range append([]string{"upload"}, VariantNames...) {
				key := blobKey(r.Tenant, r.Hash, name)
				if err := s.blobs.Delete(sys, key); err != nil {
					return err
				}
				s.cache.dropBytes(key)
			}
		}
	}
	return nil
}

func (c *cache) dropBytes(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.Remove(el)
		delete(c.items, key)
		c.size -= int64(len(el.Value.(*cached).data))
	}
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(w, r, s.log, err)
}
