// Package s3test gives tests a real S3-compatible server on 127.0.0.1:
// the one ABACUS_TEST_S3_URL names (scripts/test starts test/tools/s3server
// and sets it), or else a gofakes3 server started in-process for the
// test, so `go test` works alone. Only tests import it.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/abacusbilling/abacus/internal/blob"
)

// EnvURL names the variable with an external S3-compatible server's URL.
const EnvURL = "ABACUS_TEST_S3_URL"

// Endpoint returns the URL of an S3-compatible server for t: EnvURL when
// set, else a gofakes3 server in this process, stopped when t ends.
func Endpoint(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog())).Server(),
		ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// Config returns the S3 configuration of a fresh bucket (created on open)
// at Endpoint(t), so tests sharing one server never see each other's
// objects.
func Config(t testing.TB) blob.S3Config {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return blob.S3Config{Endpoint: Endpoint(t), Bucket: "test-" + hex.EncodeToString(b), AccessKey: "abacus", SecretKey: "abacus-secret",
		Prefix: "abacus/", CreateBucket: true}
}

// Store opens a Store in a fresh bucket (see Config).
func Store(t testing.TB) *blob.S3 {
	t.Helper()
	s, err := blob.NewS3(context.Background(), Config(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
