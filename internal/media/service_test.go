package media

import (
	"bytes"
	"context"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/blob/s3test"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

type memberSet map[string]bool

func (m memberSet) IsMember(_ context.Context, conv, user string) (bool, error) {
	return m[conv+"/"+user], nil
}

type meterLog struct {
	mu  sync.Mutex
	got map[string]Usage
}

func (m *meterLog) Record(_ context.Context, tenant string, us []Usage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range us {
		m.got[tenant+"/"+u.ID] = u // by id: a retry is counted once
	}
	return nil
}

func (m *meterLog) sum(typ, subject string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, u := range m.got {
		if u.Type == typ && u.Subject == subject {
			n += u.Bytes
		}
	}
	return n
}

type bundle struct {
	svc   *Service
	d     *db.DB
	store blob.Store
	clock *abacus.FakeClock
	meter *meterLog
	srv   *httptest.Server
}

// setup builds a service on d, with the local directory on SQLite and an
// S3-compatible server on PostgreSQL (so both stores are exercised), a
// fake clock and an HTTP server whose callers name their principal in
// X-Test-Principal ("tenant kind id scope").
func setup(t *testing.T, d *db.DB, cfg Config) *bundle {
	t.Helper()
	var store blob.Store
	if d.Engine() == db.SQLite {
		dir, err := blob.NewDir(filepath.Join(t.TempDir(), "objects"))
		if err != nil {
			t.Fatal(err)
		}
		store = dir
	} else {
		store = s3test.Store(t)
	}
	b := &bundle{d: d, store: store, clock: abacus.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)), meter: &meterLog{got: map[string]Usage{}}}
	if cfg.Sizes == (Sizes{}) {
		cfg.Sizes = Sizes{Thumbnail: 32, Medium: 96, Large: 200}
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	var err error
	b.svc, err = New(d, store, b.clock, nil2log(), cfg, memberSet{"conv_1/eu_1": true, "conv_1/eu_2": true}, b.meter)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/media/{id}/content", b.svc.ServeContent)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.Header.Get("X-Test-Principal"); p != "" {
			f := strings.Fields(p)
			r = r.WithContext(abacus.WithPrincipal(r.Context(), &abacus.Principal{TenantID: f[0], Kind: f[1], ID: f[2], Scopes: []abacus.Scope{abacus.Scope(f[3])}}))
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *bundle) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (b *bundle) get(t *testing.T, u, principal string, hdr ...string) reply {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.srv.URL + u
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if principal != "" {
		req.Header.Set("X-Test-Principal", principal)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	return reply{res.StatusCode, res.Header, buf.Bytes()}
}

func as(tenant, kind, id string, scopes ...abacus.Scope) context.Context {
	return abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: tenant, Kind: kind, ID: id, Scopes: scopes})
}

func TestUploadVariantsAndAccess(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, Config{})
		b.run(t)
		ada := as("ten_a", "end_user", "eu_1")
		data := jpegWithEXIF(t, marked(400, 300), 1)
		img, created, err := b.svc.Upload(ada, UploadInput{Data: data, ConversationID: "conv_1"})
		if err != nil || !created {
			t.Fatalf("Upload = %v, %v", created, err)
		}
		if img.Status != "ready" || img.Width != 400 || img.Height != 300 || img.ContentType != "image/jpeg" || img.OwnerID != "eu_1" || len(img.Variants) != 4 {
			t.Fatalf("upload = %+v", img)
		}
		want := map[string][2]int{Thumbnail: {32, 24}, Medium: {96, 72}, Large: {200, 150}, Original: {400, 300}}
		for name, u := range img.Variants {
			r := b.get(t, u, "") // a signed URL needs no credentials
			if r.status != 200 || r.header.Get("Content-Type") != "image/jpeg" || !strings.HasPrefix(r.header.Get("ETag"), `"`) ||
				!strings.Contains(r.header.Get("Cache-Control"), "max-age=31536000") {
				t.Fatalf("%s: %d %v %s", name, r.status, r.header, r.body)
			}
			m, err := jpeg.Decode(bytes.NewReader(r.body))
			if err != nil || m.Bounds().Dx() != want[name][0] || m.Bounds().Dy() != want[name][1] {
				t.Fatalf("%s: %v %v, want %v", name, m.Bounds(), err, want[name])
			}
			if again := b.get(t, u, "", "If-None-Match", r.header.Get("ETag")); again.status != http.StatusNotModified {
				t.Fatalf("%s with If-None-Match: %d", name, again.status)
			}
		}
		// Members fetch with their own token; others cannot.
		path := "/api/v1/media/" + img.ID + "/content?variant=medium"
		if r := b.get(t, path, "ten_a end_user eu_2 -"); r.status != 200 {
			t.Fatalf("member: %d %s", r.status, r.body)
		}
		if r := b.get(t, path, "ten_a end_user eu_3 -"); r.status != 403 || !strings.Contains(string(r.body), CodeNotAMember) {
			t.Fatalf("non-member: %d %s", r.status, r.body)
		}
		if _, err := b.svc.Get(as("ten_a", "end_user", "eu_3"), img.ID); code(err) != CodeNotAMember {
			t.Fatalf("Get as non-member = %v", err)
		}
		if r := b.get(t, "/api/v1/media/"+img.ID+"/content?w=90", "ten_a api_key key_1 read"); r.status != 200 || r.header.Get("ETag") == "" {
			t.Fatalf("staff w=90: %d", r.status)
		} else if m, _ := jpeg.Decode(bytes.NewReader(r.body)); m == nil || m.Bounds().Dx() != 96 {
			t.Fatalf("w=90 should pick medium (96 wide)")
		}
		if r := b.get(t, path, "ten_b api_key key_9 read"); r.status != 404 {
			t.Fatalf("another tenant: %d %s", r.status, r.body)
		}
		if r := b.get(t, path, ""); r.status != 401 {
			t.Fatalf("no credentials: %d", r.status)
		}
		// A tampered signature and an expired one are refused.
		tampered := strings.Replace(img.Variants[Thumbnail], "variant=thumbnail", "variant=original", 1)
		if r := b.get(t, tampered, ""); r.status != 403 || !strings.Contains(string(r.body), CodeURLInvalid) {
			t.Fatalf("tampered: %d %s", r.status, r.body)
		}
		u, _ := url.Parse(img.Variants[Thumbnail])
		u.RawQuery = strings.Replace(u.RawQuery, "t=ten_a", "t=ten_b", 1)
		if r := b.get(t, u.String(), ""); r.status != 403 {
			t.Fatalf("signed URL moved to another tenant: %d", r.status)
		}
		b.clock.Advance(b.svc.cfg.URLTTL + time.Second)
		if r := b.get(t, img.Variants[Thumbnail], ""); r.status != 403 || !strings.Contains(string(r.body), CodeURLExpired) {
			t.Fatalf("expired: %d %s", r.status, r.body)
		}
		// The same bytes again: the same upload; by someone else: a new
		// upload of the same file, rendered once.
		again, created, err := b.svc.Upload(ada, UploadInput{Data: data, ConversationID: "conv_1"})
		if err != nil || created || again.ID != img.ID {
			t.Fatalf("repeat upload = %s %v %v", again.ID, created, err)
		}
		other, created, err := b.svc.Upload(as("ten_a", "api_key", "key_1", abacus.ScopeWrite), UploadInput{Data: data, OwnerID: "eu_2"})
		if err != nil || !created || other.ID == img.ID || other.Status != "ready" {
			t.Fatalf("upload by another owner = %+v %v %v", other, created, err)
		}
		// Metering: stored bytes per upload, served bytes per viewer.
		if err := b.svc.FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}
		if b.meter.sum(EventStored, "eu_1") <= 0 || b.meter.sum(EventStored, "eu_2") != b.meter.sum(EventStored, "eu_1") {
			t.Fatalf("stored bytes: eu_1 %d, eu_2 %d", b.meter.sum(EventStored, "eu_1"), b.meter.sum(EventStored, "eu_2"))
		}
		if b.meter.sum(EventServed, "eu_1") <= 0 || b.meter.sum(EventServed, "eu_2") <= 0 || b.meter.sum(EventServed, "tenant") <= 0 {
			t.Fatalf("served bytes: %+v", b.meter.got)
		}
		// Deleting hides at once; the bytes go after the retention window,
		// and only with the file's last upload.
		if err := b.svc.Delete(as("ten_a", "end_user", "eu_2"), img.ID); code(err) != "forbidden" {
			t.Fatalf("delete by a non-owner = %v", err)
		}
		if err := b.svc.Delete(ada, img.ID); err != nil {
			t.Fatal(err)
		}
		if r := b.get(t, path, "ten_a end_user eu_1 -"); r.status != 404 {
			t.Fatalf("after delete: %d", r.status)
		}
		hash := b.hashOf(t, other.ID)
		b.clock.Advance(25 * time.Hour)
		if err := b.svc.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.Get(context.Background(), blobKey("ten_a", hash, Medium)); err != nil {
			t.Fatalf("bytes still used by another upload were erased: %v", err)
		}
		if err := b.svc.DeleteOwnedBy(context.Background(), "ten_a", "eu_2"); err != nil {
			t.Fatal(err)
		}
		b.clock.Advance(25 * time.Hour)
		if err := b.svc.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, v := range VariantNames {
			if _, err := b.store.Get(context.Background(), blobKey("ten_a", hash, v)); err == nil {
				t.Fatalf("%s kept after its last upload was purged", v)
			}
		}
		if err := b.svc.FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := b.meter.sum(EventStored, "eu_1") + b.meter.sum(EventStored, "eu_2"); n != 0 {
			t.Fatalf("stored bytes after erasing everything = %d, want 0", n)
		}
		checkCachedVariantNeedsNoDatabase(t, b, d) // closes the database
	})
}

func (b *bundle) hashOf(t *testing.T, id string) string {
	t.Helper()
	var h string
	if err := b.d.QueryRowContext(context.Background(), `SELECT hash FROM media WHERE tenant_id = 'ten_a' AND id = $1`, id).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBadUploadsStoreNothing(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, Config{})
		b.run(t)
		ctx := as("ten_a", "end_user", "eu_1")
		big := jpegWithEXIF(t, marked(300, 200), 1)
		var pngBuf bytes.Buffer
		_ = png.Encode(&pngBuf, marked(20, 20))
		for _, c := range []struct {
			name string
			in   UploadInput
			want string
		}{
			{"truncated", UploadInput{Data: big[:len(big)*3/4]}, CodeCorrupt},
			{"svg", UploadInput{Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)}, CodeUnsupported},
			{"bomb", UploadInput{Data: pngBomb(20000, 20000)}, CodeTooLarge},
			{"not a member", UploadInput{Data: pngBuf.Bytes(), ConversationID: "conv_2"}, CodeNotAMember},
			{"for another user", UploadInput{Data: pngBuf.Bytes(), OwnerID: "eu_2"}, "forbidden"},
		} {
			if _, _, err := b.svc.Upload(ctx, c.in); code(err) != c.want {
				t.Errorf("%s: %v, want %s", c.name, err, c.want)
			}
		}
		var n int
		if err := d.QueryRowContext(context.Background(), `SELECT (SELECT COUNT(*) FROM media) + (SELECT COUNT(*) FROM media_files)`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("rows left by refused uploads: %d %v", n, err)
		}
	})
}

// TestCrashLeavesPendingRetriedOnStart: a process that stored an upload
// but never rendered it (killed) leaves it pending: its URLs answer 409,
// never a half image; the next process renders it on start.
func TestCrashLeavesPendingRetriedOnStart(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, Config{Wait: 20 * time.Millisecond})
		// No Run: the pool never picks the job up, as if the process died.
		img, _, err := b.svc.Upload(as("ten_a", "end_user", "eu_1"), UploadInput{Data: jpegWithEXIF(t, marked(120, 80), 1)})
		if err != nil || img.Status != "pending" {
			t.Fatalf("upload = %+v %v", img, err)
		}
		if r := b.get(t, img.Variants[Medium], ""); r.status != http.StatusConflict || r.header.Get("Retry-After") == "" {
			t.Fatalf("pending variant: %d %v", r.status, r.header)
		}
		next, err := New(d, b.store, b.clock, nil2log(), Config{Sizes: b.svc.cfg.Sizes, Workers: 1, SigningKey: b.svc.cfg.SigningKey}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = next.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		for i := 0; ; i++ {
			got, err := next.Get(as("ten_a", "end_user", "eu_1"), img.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status == "ready" {
				break
			}
			if i == 200 {
				t.Fatal("the pending upload was not rendered after start")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if r := b.get(t, img.Variants[Medium], ""); r.status != 200 {
			t.Fatalf("after the restart: %d %s", r.status, r.body)
		}
		if _, err := b.store.Get(context.Background(), blobKey("ten_a", b.hashOf(t, img.ID), "upload")); err == nil {
			t.Fatal("the raw upload (with its metadata) was kept after rendering")
		}
	})
}
