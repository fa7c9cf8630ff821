// Package payments collects what invoices say: a gateway seam (Gateway)
// with adapters named after what they wrap (payments/stripe; the manual
// adapter, Service.RecordManual, for money received outside a gateway;
// payments/paytest.Fake for tests), per-tenant gateway credentials sealed
// at rest, customers' collection methods and payment methods, the
// payments ledger per invoice, gateway callbacks, disputes, balances and
// the aging report. Billing owns invoices: the ledger decides what an
// invoice has received and billing.Service.ApplyPayments sets its amount
// due and status from it, in the same transaction.
//
// A payment's states. Each has a rank and a payment only moves to a
// higher one, so gateway events that arrive late, twice or out of order
// never undo a later state (a payment_failed after succeeded changes
// nothing):
//
//	pending (0) ──▶ processing (1) ──▶ succeeded (3)
//	   │                 │          ╲
//	   └───────────────▶ failed | canceled (2) ──▶ succeeded (3)
//
// pending is recorded, with the attempt's idempotency key, before the
// gateway is called; a crash before the answer is recorded leaves it for
// Reconcile, which replays the call with the same key (one charge).
//
// What an invoice has received (netPaid) is the sum of its succeeded
// payments less their refunds, less the amounts of chargebacks that are
// open or lost; inquiries and early fraud warnings withdraw nothing:
//
//	invoice open ──(net paid ≥ amount due)──▶ paid ──(refund | dispute)──▶ open
//	                                           ▲                              │
//	                                           └──────(dispute won)───────────┘
//
// What exceeds the invoice goes to the customer's credit ledger once.
// A dispute's states move forward only (needs_response/warning → under
// review → won | lost), so its events too may come in any order.
package payments
