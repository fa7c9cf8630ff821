package app_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/document"
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

// TestInboundFacturXEmailReachesTheAPI: the inbound-smtp role of a whole
// Abacus receives a Factur-X PDF sent by a real SMTP client to the
// tenant's inbound address, and the API serves it as a normalised
// document (issue 22's done-when point). The receiver itself runs on both
// engines in internal/inbound/smtp.
func TestInboundFacturXEmailReachesTheAPI(t *testing.T) {
	t.Parallel()
	a := start(t, db.SQLite, func(c *config.Config) {
		c.Inbound.SMTPAddr = "127.0.0.1:0"
		c.Inbound.Domain = "in.example.test"
	})
	ubl, err := os.ReadFile(filepath.Join("..", "document", "testdata", "examples", "invoice-saas-de.xml"))
	if err != nil {
		t.Fatal(err)
	}
	pdf, _, err := document.Convert(ubl, document.FormatFacturX)
	if err != nil {
		t.Fatal(err)
	}
	addr := a.do(http.MethodGet, "/api/v1/documents/inbound-address", a.key, nil).json(t)["address"].(string)
	if !strings.HasSuffix(addr, "@in.example.test") {
		t.Fatalf("address %q", addr)
	}
	enc := base64.StdEncoding.EncodeToString(pdf)
	var lines []string
	for len(enc) > 76 {
		lines, enc = append(lines, enc[:76]), enc[76:]
	}
	lines = append(lines, enc)
	msg := "From: billing@supplier.example\r\nTo: " + addr + "\r\nSubject: Invoice WW-2027-00042\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n--x\r\n" +
		"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"WW-2027-00042.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		strings.Join(lines, "\r\n") + "\r\n--x--\r\n"
	if err := smtp.SendMail(a.InboundSMTPAddr(), nil, "billing@supplier.example", []string{addr}, []byte(msg)); err != nil {
		t.Fatalf("sending: %v", err)
	}
	msgs := a.do(http.MethodGet, "/api/v1/documents/inbound-messages", a.key, nil).json(t)
	data, _ := msgs["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("messages: %v", msgs)
	}
	m := data[0].(map[string]any)
	docs, _ := m["documents"].([]any)
	if m["status"] != "processed" || len(docs) != 1 {
		t.Fatalf("message %v", m)
	}
	if got := a.do(http.MethodGet, "/api/v1/documents/inbound-messages/"+m["id"].(string), a.key, nil); got.status != 200 || got.json(t)["id"] != m["id"] {
		t.Fatalf("get message: %d %s", got.status, got.body)
	}
	id := docs[0].(string)
	meta := a.do(http.MethodGet, "/api/v1/documents/inbound/"+id, a.key, nil).json(t)
	if meta["source"] != "email" || meta["format"] != "facturx" || meta["status"] != "valid" {
		t.Fatalf("document %v", meta)
	}
	norm := a.do(http.MethodGet, "/api/v1/documents/inbound/"+id+"?format=json", a.key, nil)
	if norm.status != 200 || norm.json(t)["number"] != "WW-2027-00042" {
		t.Fatalf("normalised: %d %.300s", norm.status, norm.body)
	}
}
