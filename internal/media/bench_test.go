package media

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// photo12MP is a 4000 × 3000 JPEG with detail (a gradient and noise-like
// pattern), about what a phone camera sends.
func photo12MP(b *testing.B) []byte {
	b.Helper()
	m := image.NewRGBA(image.Rect(0, 0, 4000, 3000))
	for y := range 3000 {
		for x := range 4000 {
			i := m.PixOffset(x, y)
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = byte(x*255/4000), byte(y*255/3000), byte((x*y)^(x+y)), 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkRender12MP renders a 12-megapixel JPEG into the original and
// the three variants (decode, resize, orient, encode), one image at a
// time; images/s is per core in use.
//
//	go test ./internal/media -run '^$' -bench Render12MP -benchtime 10x
func BenchmarkRender12MP(b *testing.B) {
	data := photo12MP(b)
	h, err := ReadHeader(data, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for range b.N {
		if _, err := Render(data, h, DefaultSizes); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) / time.Duration(b.N)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	// CPU time per image (user + system, all threads): what a core that is
	// not shared would take, whatever the load average.
	b.ReportMetric(cpu.Seconds(), "cpu-s/image")
}

// BenchmarkServeCachedVariant measures a cached medium variant fetched by
// its signed URL through the real HTTP edge (httpapi's middleware, as in
// abacus serve) beside a bare http.FileServer serving the same bytes, in
// the same run: 32 keep-alive clients for 5 s each, in this process.
//
//	go test ./internal/media -run '^$' -bench ServeCachedVariant -benchtime 1x
func BenchmarkServeCachedVariant(b *testing.B) {
	d := dbtest.Open(b, db.SQLite)
	store, err := blob.NewDir(filepath.Join(b.TempDir(), "objects"))
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(d, store, abacus.SystemClock{}, slog.New(slog.DiscardHandler), Config{Workers: 2}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = svc.Run(ctx) }()
	img, _, err := svc.Upload(as("ten_a", "api_key", "key_1", abacus.ScopeWrite), UploadInput{Data: photo12MP(b)})
	if err != nil || img.Status != "ready" {
		b.Fatalf("upload: %+v %v", img.Status, err)
	}
	api := httpapi.New(httpapi.Config{MaxBodyBytes: 16 << 20}, d, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	RegisterRoutes(api, svc)
	abacusURL := serve(b, api.Handler()) + img.Variants[Medium]
	medium, err := store.Get(ctx, blobKey("ten_a", hashOfUpload(b, d, img.ID), Medium))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medium.jpg"), medium, 0o600); err != nil {
		b.Fatal(err)
	}
	fileURL := serve(b, http.FileServer(http.Dir(dir))) + "/medium.jpg"
	for range b.N {
		base := load(b, fileURL, len(medium))
		got := load(b, abacusURL, len(medium))
		b.ReportMetric(base, "fileserver-req/s")
		b.ReportMetric(got, "abacus-req/s")
		b.Logf("variant %d bytes: http.FileServer %.0f req/s, Abacus signed URL %.0f req/s (%.0f%%)", len(medium), base, got, 100*got/base)
	}
}

func hashOfUpload(b *testing.B, d *db.DB, id string) string {
	var h string
	if err := d.QueryRowContext(context.Background(), `SELECT hash FROM media WHERE id = $1`, id).Scan(&h); err != nil {
		b.Fatal(err)
	}
	return h
}

func serve(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// load runs 32 keep-alive clients against url for 5 s and returns the
// answers per second; every answer must be 200 with size bytes.
func load(b *testing.B, url string, size int) float64 {
	const clients, span = 32, 5 * time.Second
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var n, bad atomic.Int64
	stop := time.Now().Add(span)
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			for time.Now().Before(stop) {
				res, err := c.Get(url)
				if err != nil {
					bad.Add(1)
					continue
				}
				m, _ := io.CopyBuffer(io.Discard, res.Body, buf)
				res.Body.Close()
				if res.StatusCode != 200 || int(m) != size {
					bad.Add(1)
					continue
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if bad.Load() > 0 {
		b.Fatalf("%s: %d bad answers", url, bad.Load())
	}
	return float64(n.Load()) / time.Since(start).Seconds()
}
