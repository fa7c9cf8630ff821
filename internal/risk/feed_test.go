package risk

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// linker is a fixed catalog: cus_1 has the external id crm-1.
type linker struct{}

func (linker) CustomerByExternalID(_ context.Context, _, ext string) (string, error) {
	if ext == "crm-1" {
		return "cus_1", nil
	}
	return "", nil
}

func (linker) ExternalIDOf(_ context.Context, _, id string) (string, error) {
	if id == "cus_1" {
		return "crm-1", nil
	}
	return "", nil
}

// The payments and end-user events become risk events as docs/risk.md
// maps them, once each, with the payment's customer named by its
// external id; a failed payment and a lost dispute keep their outcome.
func TestFeedMapsDomainEvents(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(time.Now())
		svc, err := NewService(d, clock, slog.New(slog.DiscardHandler), Config{HashKey: bytes.Repeat([]byte{3}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		svc.SetCustomers(linker{})
		ctx := context.Background()
		if err := svc.Start(ctx, nil); err != nil {
			t.Fatal(err)
		}
		defer svc.Stop()
		at := clock.Now()
		des := []DomainEvent{
			{ID: "evt_01jbx7m0c1e3g5i7k9m1o3q5s1", Tenant: "ten_a", Type: "payment.failed", At: at,
				Data: []byte(`{"payment_id":"pay_1","customer_id":"cus_1","status":"failed","amount":"49.00","currency":"EUR","decline_code":"card_declined"}`)},
			{ID: "evt_01jbx7m0c1e3g5i7k9m1o3q5s2", Tenant: "ten_a", Type: "dispute.closed", At: at,
				Data: []byte(`{"dispute_id":"dp_1","payment_id":"pay_1","customer_id":"cus_2","status":"lost","outcome":"lost","amount":"49.00","currency":"EUR","kind":"dispute"}`)},
			{ID: "evt_01jbx7m0c1e3g5i7k9m1o3q5s3", Tenant: "ten_a", Type: "end_user.signed_in", At: at,
				Data: []byte(`{"end_user_id":"eu_1","session_id":"ses_1","method":"password","device_name":"Pixel","user_agent":"UA","ip":"198.51.100.4","new_device":true}`)},
			{ID: "evt_01jbx7m0c1e3g5i7k9m1o3q5s4", Tenant: "ten_a", Type: "invoice.paid", At: at, Data: []byte(`{"invoice_id":"inv_1"}`)},
		}
		if err := svc.Feed(ctx, des); err != nil {
			t.Fatal(err)
		}
		if err := svc.Feed(ctx, des[:1]); err != nil { // redelivered
			t.Fatal(err)
		}
		var got []*Event
		if err := scanEvents(ctx, d, "ten_a", at.Add(-time.Hour), func(se storedEvent) error { got = append(got, se.ev); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("stored %d risk events, want 3 (one per mapped domain event, none twice)", len(got))
		}
		byID := map[string]*Event{}
		for _, e := range got {
			byID[e.ID] = e
			if e.Source != "abacus" {
				t.Errorf("%s: source %q", e.ID, e.Source)
			}
		}
		pay, dis, login := byID["rev_01jbx7m0c1e3g5i7k9m1o3q5s1"], byID["rev_01jbx7m0c1e3g5i7k9m1o3q5s2"], byID["rev_01jbx7m0c1e3g5i7k9m1o3q5s3"]
		if pay == nil || pay.Type != TypePayment || pay.CustomerID != "crm-1" || pay.AbacusCustomerID != "cus_1" || pay.Amount != "49.00" ||
			pay.Properties["status"] != "failed" || pay.Properties["decline_code"] != "card_declined" {
			t.Errorf("payment.failed became %+v", pay)
		}
		if dis == nil || dis.Type != TypeDispute || dis.CustomerID != "cus_2" || dis.Properties["status"] != "lost" {
			t.Errorf("dispute.closed became %+v", dis)
		}
		if login == nil || login.Type != TypeLogin || login.EndUserID != "eu_1" || login.IPPrefix != "198.51.100.0/24" ||
			login.Properties["status"] != "succeeded" || login.DeviceID == "" || login.DeviceID == "Pixel|UA" {
			t.Errorf("end_user.signed_in became %+v", login)
		}
	})
}
