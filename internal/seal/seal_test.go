package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

func TestSealOpens(t *testing.T) {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("row_1", "sk_test_123")
	if strings.Contains(sealed, "sk_test") || !strings.HasPrefix(sealed, "v1:") {
		t.Fatalf("sealed = %q", sealed)
	}
	if got, err := s.Open("row_1", sealed); err != nil || got != "sk_test_123" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open("row_2", sealed); err == nil {
		t.Fatal("a value sealed for row_1 opened for row_2")
	}
	other := make([]byte, KeySize)
	_, _ = rand.Read(other)
	o, _ := New(other)
	if _, err := o.Open("row_1", sealed); err == nil {
		t.Fatal("opened with another key")
	}
	if s.Seal("x", "") != "" {
		t.Fatal("empty is not kept empty")
	}
	if _, err := New(key[:16]); err == nil {
		t.Fatal("a 16-byte key was taken")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateKey("", dir, "x.key", "x.encryption_key")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateKey("", dir, "x.key", "x.encryption_key")
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("second load = %x, %v; want %x", b, err, a)
	}
	given := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, KeySize))
	if k, err := LoadOrCreateKey(given, dir, "x.key", "x.encryption_key"); err != nil || k[0] != 7 {
		t.Fatalf("configured key = %x, %v", k, err)
	}
	if _, err := LoadOrCreateKey("c2hvcnQ=", dir, "x.key", "x.encryption_key"); err == nil || !strings.Contains(err.Error(), "x.encryption_key") {
		t.Fatalf("short key: %v", err)
	}
}
