package push_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
	"github.com/abacusbilling/abacus/internal/notifications/push"
)

const tenant = "ten_a"

var ada = inapp.Person{TenantID: tenant, Kind: notifications.RecipientEndUser, ID: "eu_ada"}

// received is one request the push service stub got.
type received struct {
	path   string
	header http.Header
	body   []byte
}

// pushService is a stub push service: 201 for every endpoint but those
// under /gone/, which answer 410 like an expired subscription.
func pushService(t *testing.T) (*httptest.Server, func() []received) {
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.URL.Path, r.Header.Clone(), b})
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/gone/") {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received { mu.Lock(); defer mu.Unlock(); return append([]received(nil), got...) }
}

// device is a browser's subscription keys, made here as a browser makes
// them.
type device struct {
	priv *ecdh.PrivateKey
	auth []byte
}

func newDevice(t *testing.T) device {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return device{priv, auth}
}

func (d device) subscription(endpoint string) push.NewDevice {
	n := push.NewDevice{Endpoint: endpoint}
	n.Keys.P256dh = base64.RawURLEncoding.EncodeToString(d.priv.PublicKey().Bytes())
	n.Keys.Auth = base64.RawURLEncoding.EncodeToString(d.auth)
	return n
}

var (
	eceOnce sync.Once
	eceErr  error
)

// decrypt runs http_ece (npm, not written here) under node on body.
func decrypt(t *testing.T, d device, body []byte) []byte {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to decrypt with http_ece: %v", err)
	}
	dir := filepath.Join("testdata", "ece")
	// Once per run: both engines' subtests decrypt in parallel, and a second
	// npm ci would empty node_modules under the first one's node.
	eceOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "http_ece")); err != nil {
			cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				eceErr = fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
			}
		}
	})
	if eceErr != nil {
		t.Fatal(eceErr)
	}
	f := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(f, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, filepath.Join(dir, "decrypt.js"), f,
		base64.RawURLEncoding.EncodeToString(d.priv.Bytes()), base64.RawURLEncoding.EncodeToString(d.auth)).CombinedOutput()
	if err != nil {
		t.Fatalf("http_ece could not decrypt the push: %v\n%s", err, out)
	}
	return out
}

// checkVAPID verifies the request's VAPID JWT (RFC 8292) with the tenant's
// public key, with the standard library only.
func checkVAPID(t *testing.T, h http.Header, pub, audience string) {
	t.Helper()
	v, ok := strings.CutPrefix(h.Get("Authorization"), "vapid ")
	if !ok {
		t.Fatalf("Authorization %q", h.Get("Authorization"))
	}
	var tok, k string
	for _, part := range strings.Split(v, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch name {
		case "t":
			tok = val
		case "k":
			k = val
		}
	}
	if k != pub {
		t.Fatalf("VAPID k=%q, the tenant's key is %q", k, pub)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(pub)
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		t.Fatalf("the tenant's public key: %v", err)
	}
	parts := strings.Split(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(key, sum[:],
		new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the VAPID JWT does not verify with the tenant's public key")
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ Aud, Sub string }
	_ = json.Unmarshal(claims, &c)
	if c.Aud != audience || c.Sub != "mailto:ops@example.com" {
		t.Fatalf("VAPID claims %s", claims)
	}
}

func setup(t *testing.T, d *db.DB) (*push.Service, *notifications.Service) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	seal, err := push.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := push.New(d, abacus.SystemClock{}, log, seal, push.Config{Subject: "mailto:ops@example.com", AllowLocalEndpoints: true})
	n := notifications.New(d, abacus.SystemClock{}, log, notifications.Config{})
	n.RegisterChannel(p)
	return p, n
}

func send(t *testing.T, d *db.DB, n *notifications.Service, link string) string {
	t.Helper()
	var id string
	err := d.InTx(context.Background(), func(tx *db.Tx) (err error) {
		id, err = n.Enqueue(context.Background(), tx, notifications.Message{TenantID: tenant, Template: "staff.verify_email",
			To: notifications.Recipient{Kind: ada.Kind, ID: ada.ID}, Channels: []string{notifications.ChannelPush}, Category: "account",
			Data: map[string]any{"email": "ada@example.com", "link": link, "expires": "1 hour"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	return id
}

// A push reaches the push service encrypted for the device, decrypts with
// the device's private key and auth secret, and is signed with the
// tenant's VAPID key; a subscription the push service calls gone (410) is
// deleted.
func TestWebPushDecryptsWithTheSubscriberKeys(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		srv, got := pushService(t)
		p, n := setup(t, d)
		phone, laptop := newDevice(t), newDevice(t)
		if _, err := p.Subscribe(ctx, ada, phone.subscription(srv.URL+"/push/phone")); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Subscribe(ctx, ada, laptop.subscription(srv.URL+"/gone/laptop")); err != nil {
			t.Fatal(err)
		}
		keys, err := p.VAPIDKeys(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		id := send(t, d, n, "https://app.test/verify?token=42")

		reqs := got()
		if len(reqs) != 2 {
			t.Fatalf("%d pushes, want 2", len(reqs))
		}
		for _, r := range reqs {
			if r.path != "/push/phone" {
				continue
			}
			if r.header.Get("Content-Encoding") != "aes128gcm" || strings.Contains(string(r.body), "token=42") {
				t.Fatalf("not encrypted: %s", r.header)
			}
			checkVAPID(t, r.header, keys.PublicKey, srv.URL)
			var m push.Message
			plain := decrypt(t, phone, r.body)
			if err := json.Unmarshal(plain, &m); err != nil {
				t.Fatalf("decrypted %q: %v", plain, err)
			}
			if m.NotificationID != id || !strings.Contains(m.Body, "https://app.test/verify?token=42") || m.Title == "" {
				t.Fatalf("message %+v", m)
			}
		}
		subs, err := p.Subscriptions(ctx, ada)
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) != 1 || subs[0].Endpoint != srv.URL+"/push/phone" || subs[0].LastSentAt == nil {
			t.Fatalf("after a 410 the laptop's subscription should be gone: %+v", subs)
		}
		var sealed string
		if err := d.QueryRowContext(ctx, `SELECT private_key_sealed FROM notification_push_keys WHERE tenant_id = $1`, tenant).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(sealed, keys.PrivateKey) {
			t.Fatal("the VAPID private key is stored in the clear")
		}
	})
}

// FCM and APNs go through the provider seam; Fake records them and
// prunes a token it is told is gone.
func TestNativeProvidersGoThroughTheSeam(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	ctx := context.Background()
	p, n := setup(t, d)
	fcm := &push.Fake{}
	p.SetProvider(push.ProviderFCM, fcm)
	for _, tok := range []string{"token-kept", "token-removed"} {
		if _, err := p.Subscribe(ctx, ada, push.NewDevice{Provider: push.ProviderFCM, Endpoint: tok}); err != nil {
			t.Fatal(err)
		}
	}
	fcm.Gone("token-removed")
	send(t, d, n, "https://app.test/x")
	sent := fcm.Sent()
	if len(sent) != 1 || sent[0].Device.Endpoint != "token-kept" || !strings.Contains(string(sent[0].Payload), "https://app.test/x") {
		t.Fatalf("sent %+v", sent)
	}
	subs, _ := p.Subscriptions(ctx, ada)
	if len(subs) != 1 {
		t.Fatalf("subscriptions %+v", subs)
	}
}

// Bad subscriptions are refused naming the field.
func TestSubscribeRefusesBadKeys(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	p, _ := setup(t, d)
	n := push.NewDevice{Endpoint: "ftp://x"}
	n.Keys.P256dh, n.Keys.Auth = "AAAA", "short"
	_, err := p.Subscribe(context.Background(), ada, n)
	e, ok := abacus.AsError(err)
	if !ok || e.Code != "invalid_push_subscription" || len(e.Fields) != 3 {
		t.Fatalf("err %v", err)
	}
}

// A device chooses its endpoint: pushes never connect into the local
// network unless the deployment allows it (tests).
func TestEndpointsInTheLocalNetworkAreRefused(t *testing.T) {
	t.Parallel()
	srv, got := pushService(t)
	d := newDevice(t)
	n := d.subscription(srv.URL + "/push/x")
	p := push.Push{Device: push.Device{Endpoint: n.Endpoint, P256dh: n.Keys.P256dh, Auth: n.Keys.Auth}, Payload: []byte(`{}`),
		VAPID: vapid(t)}
	err := push.WebPush{Client: push.NewClient(false)}.Send(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "local or private address") || len(got()) != 0 {
		t.Fatalf("err %v, %d requests reached the stub", err, len(got()))
	}
	if err := (push.WebPush{Client: push.NewClient(true)}).Send(context.Background(), p); err != nil || len(got()) != 1 {
		t.Fatalf("allowed: err %v, %d requests", err, len(got()))
	}
}

func vapid(t *testing.T) push.VAPID {
	d := dbtest.Open(t, db.SQLite)
	p, _ := setup(t, d)
	k, err := p.VAPIDKeys(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
