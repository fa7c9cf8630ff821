package webhooks

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// After a rotation both secrets verify every delivery for 24 hours (two
// v1 signatures); afterwards only the new one does.
func TestRotationSignsWithBothSecretsDuringTheOverlap(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(time.Now())
		s := newService(t, d, clock, privateOK)
		rcv := newReceiver(t, nil)
		ep := createEndpoint(t, s, "ten_a", rcv.URL)
		rotated, err := s.RotateSecret(tenantCtx("ten_a"), ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rotated.Secret == ep.Secret || !strings.HasPrefix(rotated.Secret, SecretPrefix) {
			t.Fatalf("rotation answered secret %q", rotated.Secret)
		}
		disp := s.NewDispatcher()
		if err := s.Ingest(context.Background(), events("ten_a", clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		step(t, disp)
		clock.Advance(RotationOverlap - time.Minute)
		if err := s.Ingest(context.Background(), events("ten_a", clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		step(t, disp)
		got := rcv.deliveries()
		if len(got) != 2 {
			t.Fatalf("%d deliveries, want 2", len(got))
		}
		for i, g := range got {
			if n := len(strings.Fields(g.Signature)); n != 2 {
				t.Fatalf("delivery %d during the overlap has %d signatures, want 2", i, n)
			}
			for _, secret := range []string{ep.Secret, rotated.Secret} {
				wh, _ := standardwebhooks.NewWebhook(secret)
				if err := wh.VerifyIgnoringTimestamp(g.Body, g.Header); err != nil {
					t.Fatalf("delivery %d during the overlap does not verify with a secret: %v", i, err)
				}
			}
		}
		clock.Advance(2 * time.Minute)
		if err := s.Ingest(context.Background(), events("ten_a", clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		step(t, disp)
		last := rcv.deliveries()[2]
		oldWH, _ := standardwebhooks.NewWebhook(ep.Secret)
		newWH, _ := standardwebhooks.NewWebhook(rotated.Secret)
		if newWH.VerifyIgnoringTimestamp(last.Body, last.Header) != nil || oldWH.VerifyIgnoringTimestamp(last.Body, last.Header) == nil {
			t.Fatalf("after the overlap: signature %q should verify with the new secret only", last.Signature)
		}
	})
}

// Secrets are encrypted at rest: the stored column is not the secret.
func TestSecretIsEncryptedAtRest(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	s := newService(t, d, abacus.SystemClock{}, privateOK)
	ep := createEndpoint(t, s, "ten_a", "http://127.0.0.1:9/")
	var stored string
	if err := d.QueryRowContext(context.Background(), `SELECT secret FROM webhook_endpoints WHERE id = $1`, ep.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimPrefix(ep.Secret, SecretPrefix)
	if strings.Contains(stored, key) || strings.Contains(stored, SecretPrefix) {
		t.Fatalf("the secret is stored in clear: %q", stored)
	}
	if opened, err := s.sealer.open(ep.ID, stored); err != nil || opened != ep.Secret {
		t.Fatalf("the stored secret does not open: %v", err)
	}
	if _, err := s.sealer.open("whep_other", stored); err == nil {
		t.Fatal("a sealed secret opens under another endpoint's id")
	}
}

// 410 Gone disables the endpoint, records webhook_endpoint.disabled and
// stops deliveries to it.
func TestGoneDisablesTheEndpoint(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(t0)
		s := newService(t, d, clock, privateOK)
		rcv := newReceiver(t, func(string, int) int { return http.StatusGone })
		ep := createEndpoint(t, s, "ten_a", rcv.URL)
		if err := s.Ingest(context.Background(), events("ten_a", t0, 1)); err != nil {
			t.Fatal(err)
		}
		disp := s.NewDispatcher()
		step(t, disp)
		got, err := s.GetEndpoint(tenantCtx("ten_a"), ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Enabled || got.DisabledReason != ReasonGone {
			t.Fatalf("after 410: enabled %v, reason %q", got.Enabled, got.DisabledReason)
		}
		assertDisabledEvent(t, d, ep.ID, ReasonGone)
		if err := s.Ingest(context.Background(), events("ten_a", t0, 3)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
		step(t, disp)
		if n := len(rcv.deliveries()); n != 1 {
			t.Fatalf("a disabled endpoint got %d deliveries, want only the one answered 410", n)
		}
		if m := messages(t, s, "ten_a", ep.ID); len(m) != 1 || m[0].Status != StatusFailed {
			t.Fatalf("messages of the disabled endpoint: %+v", m)
		}
	})
}

// An endpoint that fails every attempt for 5 days is disabled, not
// sooner, and the tenant is told through webhook_endpoint.disabled.
func TestFailingForFiveDaysDisables(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(t0)
		s := newService(t, d, clock, privateOK)
		rcv := newReceiver(t, func(string, int) int { return http.StatusBadGateway })
		ep := createEndpoint(t, s, "ten_a", rcv.URL)
		disp := s.NewDispatcher()
		var firstFailure time.Time
		for clock.Now().Sub(t0) < 7*24*time.Hour {
			if err := s.Ingest(context.Background(), events("ten_a", clock.Now(), 1)); err != nil {
				t.Fatal(err)
			}
			step(t, disp)
			if firstFailure.IsZero() && len(rcv.deliveries()) > 0 {
				firstFailure = clock.Now()
			}
			e, err := s.GetEndpoint(tenantCtx("ten_a"), ep.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !e.Enabled {
				if failing := clock.Now().Sub(firstFailure); failing < FailingDisableAfter || e.DisabledReason != ReasonFailing {
					t.Fatalf("disabled (%q) after failing for %s", e.DisabledReason, failing)
				}
				assertDisabledEvent(t, d, ep.ID, ReasonFailing)
				return
			}
			clock.Advance(3 * time.Hour)
		}
		t.Fatal("an endpoint failing for 7 days is still enabled")
	})
}

func assertDisabledEvent(t *testing.T, d *db.DB, endpoint, reason string) {
	t.Helper()
	var payload string
	err := d.QueryRowContext(context.Background(), `SELECT payload FROM outbox_events WHERE type = 'webhook_endpoint.disabled' AND aggregate_id = $1`, endpoint).Scan(&payload)
	if err != nil {
		t.Fatalf("no webhook_endpoint.disabled event for %s: %v", endpoint, err)
	}
	p, err := EndpointDisabled.Decode([]byte(payload))
	if err != nil || p.Reason != reason || p.EndpointID != endpoint {
		t.Fatalf("disabled event %s (%v), want reason %s", payload, err, reason)
	}
	// The payload matches the schema the catalog serves for it.
	c := jsonschema.NewCompiler()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(EndpointDisabled.Type().Schema))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("urn:webhook_endpoint.disabled", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("urn:webhook_endpoint.disabled")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := jsonschema.UnmarshalJSON(strings.NewReader(payload))
	if err := schema.Validate(v); err != nil {
		t.Fatalf("disabled event %s does not match its schema: %v", payload, err)
	}
}

// Private targets are refused when an endpoint is saved, naming the url
// field, and unknown event types name their index.
func TestBadEndpointsAreRefusedNamingTheField(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	s := newService(t, d, abacus.SystemClock{}, Config{})
	for _, url := range []string{
		"http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/", "http://192.168.0.10/",
		"http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fd00:ec2::254]/", "http://[fe80::1]/",
		"http://0.0.0.0/", "http://224.0.0.1/", "http://100.100.100.200/", "http://[::ffff:127.0.0.1]/",
		"ftp://example.com/", "not a url", "https://user:pass@example.com/",
	} {
		_, err := s.CreateEndpoint(tenantCtx("ten_a"), EndpointInput{URL: url})
		e, ok := abacus.AsError(err)
		if !ok || e.Kind != abacus.KindInvalid || len(e.Fields) != 1 || e.Fields[0].Field != "url" {
			t.Errorf("%s: got %v, want an invalid_webhook_endpoint error on url", url, err)
		}
	}
	_, err := s.CreateEndpoint(tenantCtx("ten_a"), EndpointInput{URL: "https://93.184.215.14/hook", EventTypes: []string{thingEvent.Type().Name, "invoice.exploded"}})
	e, ok := abacus.AsError(err)
	if !ok || len(e.Fields) != 1 || e.Fields[0].Field != "event_types[1]" {
		t.Fatalf("unknown event type: got %v, want a field error on event_types[1]", err)
	}
	if _, err := s.CreateEndpoint(tenantCtx("ten_a"), EndpointInput{URL: "https://93.184.215.14/hook"}); err != nil {
		t.Fatalf("a public IP target was refused: %v", err)
	}
}

// The guard also holds at delivery: an endpoint saved while private
// targets were allowed (or whose name now resolves inside) is not dialled.
func TestDeliveryToAPrivateAddressIsRefused(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(t0)
		rcv := newReceiver(t, nil)
		ep := createEndpoint(t, newService(t, d, clock, privateOK), "ten_a", rcv.URL)
		s := newService(t, d, clock, Config{})
		if err := s.Ingest(context.Background(), events("ten_a", t0, 1)); err != nil {
			t.Fatal(err)
		}
		rs := step(t, s.NewDispatcher())
		if len(rs) != 1 || rs[0].status != 0 || !strings.Contains(rs[0].errText, "refused") {
			t.Fatalf("attempt result %+v, want refused", rs)
		}
		if n := len(rcv.deliveries()); n != 0 {
			t.Fatalf("the private receiver got %d requests", n)
		}
		if m := messages(t, s, "ten_a", ep.ID)[0]; m.Status != StatusPending || m.Attempts[0].Error == "" {
			t.Fatalf("a refused attempt should be logged and retried: %+v", m)
		}
	})
}

func TestForbiddenIP(t *testing.T) {
	t.Parallel()
	for ip, forbidden := range map[string]bool{
		"127.0.0.1": true, "10.0.0.1": true, "172.16.5.4": true, "192.168.1.1": true, "169.254.169.254": true,
		"::1": true, "fd00:ec2::254": true, "fe80::1": true, "ff02::1": true, "0.0.0.0": true, "::": true,
		"100.64.0.1": true, "::ffff:10.0.0.1": true, "255.255.255.255": true,
		"93.184.215.14": false, "8.8.8.8": false, "2606:4700::1111": false, "172.32.0.1": false,
	} {
		if got := forbiddenIP(netip.MustParseAddr(ip)) != ""; got != forbidden {
			t.Errorf("%s: forbidden %v, want %v", ip, got, forbidden)
		}
	}
}

// Redirects are not followed (they could lead inside): a 3xx fails the
// message and the target of the redirect gets nothing.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	s := newService(t, d, abacus.NewFakeClock(t0), privateOK)
	inside := newReceiver(t, nil)
	rcv := newReceiver(t, nil)
	rcv.Config.Handler = http.RedirectHandler(inside.URL, http.StatusTemporaryRedirect)
	ep := createEndpoint(t, s, "ten_a", rcv.URL)
	if err := s.Ingest(context.Background(), events("ten_a", t0, 1)); err != nil {
		t.Fatal(err)
	}
	step(t, s.NewDispatcher())
	if n := len(inside.deliveries()); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
	if m := messages(t, s, "ten_a", ep.ID)[0]; m.Status != StatusFailed || m.Attempts[0].StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("after a 307: %+v", m)
	}
}

// Another tenant's endpoint and messages are not found through any call.
func TestOtherTenantsEndpointIsNotFound(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := newService(t, d, abacus.NewFakeClock(t0), privateOK)
		ep := createEndpoint(t, s, "ten_a", "http://127.0.0.1:9/")
		if err := s.Ingest(context.Background(), events("ten_a", t0, 1)); err != nil {
			t.Fatal(err)
		}
		msg := messages(t, s, "ten_a", ep.ID)[0].ID
		b := tenantCtx("ten_b")
		enabled := false
		calls := map[string]error{}
		_, calls["get"] = s.GetEndpoint(b, ep.ID)
		_, calls["update"] = s.UpdateEndpoint(b, ep.ID, EndpointPatch{Enabled: &enabled})
		_, calls["rotate"] = s.RotateSecret(b, ep.ID)
		_, calls["deliveries"] = s.ListDeliveries(b, ep.ID, "", 10, "")
		_, calls["resend"] = s.Resend(b, ep.ID, msg)
		_, calls["replay"] = s.Replay(b, ep.ID, ReplayInput{Since: t0})
		_, calls["test"] = s.SendTest(b, ep.ID)
		calls["delete"] = s.DeleteEndpoint(b, ep.ID)
		for name, err := range calls {
			if abacus.ErrorKind(err) != abacus.KindNotFound {
				t.Errorf("%s of another tenant's endpoint: %v, want not found", name, err)
			}
		}
		if l, err := s.ListEndpoints(b, 10, ""); err != nil || len(l.Data) != 0 {
			t.Fatalf("tenant b lists %d endpoints (%v)", len(l.Data), err)
		}
		if e, err := s.GetEndpoint(tenantCtx("ten_a"), ep.ID); err != nil || !e.Enabled {
			t.Fatalf("tenant a's endpoint changed: %+v %v", e, err)
		}
	})
}
