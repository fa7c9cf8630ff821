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
	"strconv"
	"strings"
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
	"github.com/abacusbilling/abacus/internal/loadgen"
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

// BenchmarkServeCachedVariantOpenLoop drives a cached variant's signed
// URL (through the real HTTP edge) and a bare http.FileServer serving the
// same bytes with the project's open-loop generator (loadgen.RunOpen, the
// engine of abacus bench http: one epoll thread, raw HTTP/1.1) at each
// rate of ABACUS_SERVE_RATES (default 10000), 6 s each after 2 s of
// warm-up, 16 connections, file server first, in the same run.
//
//	go test ./internal/media -run '^$' -bench ServeCachedVariantOpenLoop -benchtime 1x
func BenchmarkServeCachedVariantOpenLoop(b *testing.B) {
	abacusURL, fileURL, size := serveFixture(b)
	rates := []float64{10_000}
	if v := os.Getenv("ABACUS_SERVE_RATES"); v != "" {
		rates = rates[:0]
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.ParseFloat(f, 64)
			if err != nil {
				b.Fatal(err)
			}
			rates = append(rates, r)
		}
	}
	for range b.N {
		for _, rate := range rates {
			for _, t := range []struct{ name, url string }{{"fileserver", fileURL}, {"abacus", abacusURL}} {
				res, err := loadgen.RunOpen(context.Background(), loadgen.OpenConfig{URL: t.url, Rate: rate, Duration: 8 * time.Second,
					Warmup: 2 * time.Second, Conns: 16})
				if err != nil || res.Errors > 0 {
					b.Fatalf("%s at %.0f/s: %v (errors %d, first %v)", t.name, rate, err, res.Errors, res.FirstErr)
				}
				// Requests still owed when the drain time ran out (the server,
				// or the generator, did not keep up) are a result, not a fault.
				b.Logf("%d-byte variant, %s, target %.0f/s: achieved %.0f/s, unsent %d, latency p50 %s p99 %s max %s",
					size, t.name, rate, res.Achieved(), res.Unsent, res.Latency.P50, res.Latency.P99, res.Latency.Max)
			}
		}
	}
}

// serveFixture uploads a 12-MP photo and serves it through the HTTP edge,
// and its medium variant through a bare http.FileServer; it returns the
// variant's signed URL, the file server's URL and the variant's size.
func serveFixture(b *testing.B) (abacusURL, fileURL string, size int) {
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
	b.Cleanup(cancel)
	go func() { _ = svc.Run(ctx) }()
	img, _, err := svc.Upload(as("ten_a", "api_key", "key_1", abacus.ScopeWrite), UploadInput{Data: photo12MP(b)})
	if err != nil || img.Status != "ready" {
		b.Fatalf("upload: %+v %v", img.Status, err)
	}
	api := httpapi.New(httpapi.Config{MaxBodyBytes: 16 << 20}, d, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	RegisterRoutes(api, svc)
	medium, err := store.Get(ctx, blobKey("ten_a", hashOfUpload(b, d, img.ID), Medium))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medium.jpg"), medium, 0o600); err != nil {
		b.Fatal(err)
	}
	return serve(b, api.Handler()) + img.Variants[Medium], serve(b, http.FileServer(http.Dir(dir))) + "/medium.jpg", len(medium)
}

// BenchmarkServeCachedVariant measures a cached medium variant fetched by
// its signed URL through the real HTTP edge (httpapi's middleware, as in
// abacus serve) beside a bare http.FileServer serving the same bytes, in
// the same run: 32 keep-alive clients for 5 s each, in this process.
//
//	go test ./internal/media -run '^$' -bench ServeCachedVariant -benchtime 1x
func BenchmarkServeCachedVariant(b *testing.B) {
	abacusURL, fileURL, size := serveFixture(b)
	for range b.N {
		base := load(b, fileURL, size)
		got := load(b, abacusURL, size)
		b.ReportMetric(base, "fileserver-req/s")
		b.ReportMetric(got, "abacus-req/s")
		b.Logf("variant %d bytes: http.FileServer %.0f req/s, Abacus signed URL %.0f req/s (%.0f%%)", size, base, got, 100*got/base)
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
