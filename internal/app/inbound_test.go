package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
)

// TestInboundDocumentsOverHTTP receives a supplier invoice over the real
// API: created once (the same bytes answer 200 with the same id), listed,
// served as received and as CII; a billion-laughs payload is refused with
// problem+json naming the problem and stores nothing. (The store runs on
// both engines in internal/inbound.)
func TestInboundDocumentsOverHTTP(t *testing.T) {
	t.Parallel()
	a := start(t, db.SQLite, nil)
	raw := func(method, path string, body []byte) response {
		t.Helper()
		req, _ := http.NewRequest(method, a.base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+a.key)
		if body != nil {
			req.Header.Set("Content-Type", "application/xml")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{status: res.StatusCode, header: res.Header, body: b}
	}
	ubl, err := os.ReadFile(filepath.Join("..", "document", "testdata", "examples", "invoice-saas-de.xml"))
	if err != nil {
		t.Fatal(err)
	}
	first := raw(http.MethodPost, "/api/v1/documents/inbound", ubl)
	if first.status != http.StatusCreated {
		t.Fatalf("receive: %d %s", first.status, first.body)
	}
	doc := first.json(t)
	id, _ := doc["id"].(string)
	if doc["status"] != "valid" || doc["format"] != "ubl" || doc["number"] != "WW-2027-00042" || id == "" {
		t.Fatalf("received %s", first.body)
	}
	if again := raw(http.MethodPost, "/api/v1/documents/inbound", ubl); again.status != http.StatusOK || again.json(t)["id"] != id {
		t.Fatalf("the same bytes again: %d %s", again.status, again.body)
	}
	laughs := []byte(`<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&b;</Invoice>`)
	bad := raw(http.MethodPost, "/api/v1/documents/inbound", laughs)
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(bad.body, &p); err != nil || bad.status != http.StatusBadRequest || p.Code != "ubl_unreadable" || !bytes.Contains([]byte(p.Detail), []byte("DOCTYPE")) {
		t.Fatalf("billion laughs: %d %s", bad.status, bad.body)
	}
	list := a.do(http.MethodGet, "/api/v1/documents/inbound", a.key, nil).json(t)
	if data, _ := list["data"].([]any); len(data) != 1 {
		t.Fatalf("list: %v", list)
	}
	if orig := raw(http.MethodGet, "/api/v1/documents/inbound/"+id+"?format=original", nil); orig.status != 200 || !bytes.Equal(orig.body, ubl) {
		t.Fatalf("original: %d", orig.status)
	}
	if cii := raw(http.MethodGet, "/api/v1/documents/inbound/"+id+"?format=cii", nil); cii.status != 200 || !bytes.Contains(cii.body, []byte("CrossIndustryInvoice")) {
		t.Fatalf("as CII: %d %.200s", cii.status, cii.body)
	}
	if meta := a.do(http.MethodGet, "/api/v1/documents/inbound/"+id, a.key, nil); meta.status != 200 || meta.json(t)["content_hash"] == "" {
		t.Fatalf("metadata: %d %s", meta.status, meta.body)
	}
}
