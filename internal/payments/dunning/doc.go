// Package dunning recovers overdue invoices and makes access follow
// payment: one run per overdue invoice, advanced by leased passes (Pass)
// and by the domain events the consumer reads (Consume).
//
// A run's states:
//
//	invoice.finalized (send_invoice)            payment.failed (charge_automatically)
//	       │                                            │
//	       ▼          due date passed, unpaid           ▼
//	  scheduled ───────────────────────────────────▶ active ──▶ recovered (paid)
//	       │ paid, voided, written off before due       ├──▶ exhausted (final action) ──▶ recovered
//	       ▼                                            └──▶ closed (voided, written off)
//	  dropped (no event)
//
// An active run of a charged invoice retries the charge on the schedule
// (with reminders before); a send_invoice run reminds with the pay link
// instead. Either ends with the final action: suspend, cancel or mark
// uncollectible. See docs/payments.md, "Dunning and access".
package dunning
