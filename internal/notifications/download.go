package notifications

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
)

// Codes of download-link problems.
const (
	CodeLinkInvalid = "download_link_invalid" // 403: not a link Abacus signed
	CodeLinkExpired = "download_link_expired" // 410: signed, past its expiry
)

// Downloads keeps the renditions of delivered documents in the object
// store and signs expiring links to them (the download_link channel).
// The same key must sign and check on every node.
type Downloads struct {
	Store   blob.Store
	Key     []byte        // HMAC-SHA256 key
	BaseURL string        // Abacus's public URL, where links open
	TTL     time.Duration // how long a link works (default 30 days)
}

// SetDownloads enables the download_link channel.
func (s *Service) SetDownloads(d Downloads) {
	if d.TTL <= 0 {
		d.TTL = 30 * 24 * time.Hour
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downloads = &d
}

func (s *Service) downloadsOf() *Downloads {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.downloads
}

// DownloadLink is a signed link to one rendition, as mail templates get
// it (data "downloads").
type DownloadLink struct {
	Format   string `json:"format"`
	Filename string `json:"filename"`
	URL      string `json:"url"`
}

// linkKey is where a rendition is kept: one object per tenant, document
// and file name, so a repeated delivery overwrites it with the same bytes.
func linkKey(tenant, kind, id, filename string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r) {
			return r
		}
		return '_'
	}, filename)
	return path.Join("document-links", tenant, kind, id, safe)
}

// publish stores a and returns its signed link, valid until exp.
func (d *Downloads) publish(ctx context.Context, tenant, kind, id, format string, a Attachment, exp time.Time) (DownloadLink, error) {
	key := linkKey(tenant, kind, id, a.Filename)
	if err := d.Store.Put(ctx, key, a.Content); err != nil {
		return DownloadLink{}, fmt.Errorf("storing %s for its download link: %w", a.Filename, err)
	}
	return DownloadLink{Format: format, Filename: a.Filename, URL: d.BaseURL + "/api/v1/document-downloads/" + d.token(key, exp)}, nil
}

// token is the object key and expiry, base64url, a dot and their MAC.
func (d *Downloads) token(key string, exp time.Time) string {
	claim := base64.RawURLEncoding.EncodeToString([]byte(key + "\n" + strconv.FormatInt(exp.Unix(), 10)))
	return claim + "." + d.mac(claim)
}

func (d *Downloads) mac(claim string) string {
	m := hmac.New(sha256.New, d.Key)
	m.Write([]byte("abacus document link\n" + claim))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Download returns the rendition a link names: 403 download_link_invalid
// for a token Abacus did not sign, 410 download_link_expired past its
// expiry, 404 when the object is gone.
func (s *Service) Download(ctx context.Context, token string) (Attachment, error) {
	d := s.downloadsOf()
	if d == nil {
		return Attachment{}, abacus.NotFound("document_download", token)
	}
	claim, sig, _ := strings.Cut(token, ".")
	if !hmac.Equal([]byte(sig), []byte(d.mac(claim))) {
		return Attachment{}, abacus.Errorf(abacus.KindForbidden, CodeLinkInvalid, "this download link is not valid; use the link of the e-mail as it was sent")
	}
	raw, err := base64.RawURLEncoding.DecodeString(claim)
	key, expText, ok := strings.Cut(string(raw), "\n")
	exp, perr := strconv.ParseInt(expText, 10, 64)
	if err != nil || !ok || perr != nil {
		return Attachment{}, abacus.Errorf(abacus.KindForbidden, CodeLinkInvalid, "this download link is not valid")
	}
	if at := time.Unix(exp, 0); !s.clock.Now().Before(at) {
		return Attachment{}, abacus.Errorf(abacus.KindGone, CodeLinkExpired,
			"this download link expired at %s; ask the sender for the document again", at.UTC().Format(time.RFC3339))
	}
	b, err := d.Store.Get(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return Attachment{}, abacus.NotFound("document_download", path.Base(key))
	}
	if err != nil {
		return Attachment{}, fmt.Errorf("reading %s: %w", key, err)
	}
	return Attachment{Filename: path.Base(key), ContentType: contentTypeOf(key), Content: b}, nil
}

func contentTypeOf(name string) string {
	switch {
	case strings.HasSuffix(name, ".pdf"):
		return "application/pdf"
	case strings.HasSuffix(name, ".xml"):
		return "application/xml"
	}
	return "application/octet-stream"
}
