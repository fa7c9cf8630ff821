package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// Domain events recorded through the outbox travel the real relay and
// bus to the webhooks role, and every delivery verifies with the Standard
// Webhooks Go library and with the npm standardwebhooks package.
func TestEveryDeliveryVerifiesWithStandardWebhooksLibraries(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close()
		s := newService(t, d, abacus.SystemClock{}, privateOK)
		rcv := newReceiver(t, nil)
		all := createEndpoint(t, s, "ten_a", rcv.URL+"/all")
		only := createEndpoint(t, s, "ten_a", rcv.URL+"/other", otherEvent.Type().Name)
		_ = createEndpoint(t, s, "ten_b", rcv.URL+"/b") // another tenant's: gets nothing
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, bus) }()

		const n = 30
		err = d.InTx(ctx, func(tx *db.Tx) error {
			for i := range n {
				kind := thingEvent
				if i%3 == 0 {
					kind = otherEvent
				}
				if _, err := kind.Record(ctx, tx, "ten_a", "thing_1", time.Time{}, thingHappened{N: i}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		relay := outbox.NewRelay(d, bus, outbox.RelayConfig{}, slog.New(slog.DiscardHandler), nil)
		go func() { _ = relay.Run(ctx) }()
		waitFor(t, "every delivery", func() bool { return len(rcv.deliveries()) >= n+n/3 })

		var forNode []map[string]any
		perPath := map[string]int{}
		for _, got := range rcv.deliveries() {
			secret := all.Secret
			if isFor(t, s, only.ID, got.ID) {
				secret = only.Secret
			}
			wh, err := standardwebhooks.NewWebhook(secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(got.Body, got.Header); err != nil {
				t.Fatalf("delivery %s does not verify with the Go library: %v", got.ID, err)
			}
			p := payloadOf(t, got.Body)
			if p.Version != 1 || p.AggregateType != "thing" || len(p.Data) == 0 || p.Timestamp.IsZero() {
				t.Fatalf("payload %s lacks the event's version, aggregate, time or data", got.Body)
			}
			perPath[secret]++
			forNode = append(forNode, map[string]any{"secret": secret, "body": string(got.Body), "headers": map[string]string{
				"webhook-id": got.ID, "webhook-timestamp": got.Timestamp, "webhook-signature": got.Signature}})
		}
		if perPath[all.Secret] != n || perPath[only.Secret] != n/3 {
			t.Fatalf("the all-types endpoint got %d (want %d), the filtered one %d (want %d)", perPath[all.Secret], n, perPath[only.Secret], n/3)
		}
		verifyWithNode(t, forNode)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// isFor reports whether message id belongs to endpoint.
func isFor(t *testing.T, s *Service, endpoint, id string) bool {
	t.Helper()
	_, err := loadMessage(context.Background(), s.db, "ten_a", endpoint, id)
	return err == nil
}

var (
	npmOnce sync.Once
	npmErr  error
)

// npmCI installs standardwebhooks in dir unless it is there.
func npmCI(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json")); err == nil {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("npm is needed to install standardwebhooks (npm ci in %s): %w", dir, err)
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
	}
	return nil
}

// verifyWithNode runs testdata/node/verify.mjs (npm standardwebhooks) on
// the deliveries. Like test/sdk, it fails rather than skips without node.
func verifyWithNode(t *testing.T, deliveries []map[string]any) {
	t.Helper()
	dir := filepath.Join("testdata", "node")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to verify deliveries with the npm standardwebhooks package: %v", err)
	}
	// Once per run: both engines' subtests verify in parallel, and a second
	// npm ci would empty node_modules under the first one's node.
	npmOnce.Do(func() { npmErr = npmCI(dir) })
	if npmErr != nil {
		t.Fatal(npmErr)
	}
	in, _ := json.Marshal(deliveries)
	cmd := exec.Command(node, "verify.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm standardwebhooks refused a delivery: %v\n%s", err, out)
	}
	t.Logf("node: %s", out)
}
