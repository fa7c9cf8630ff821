// Package analytics derives MRR and its movements, customers and churn,
// retention, revenue and balances from the domain events the other
// modules publish (docs/analytics.md has the definitions).
//
//	ABACUS_EVENTS ──consumer "analytics"──▶ journal ──fold──▶ daily figures
//	                 (batches, one tx each)  (once per        per tenant,
//	                                          event id)       currency, day
//
// The journal (analytics_events) keeps the facts of each event once, in
// arrival order. Everything else is a fold of the journal: the consumer
// folds each batch into the stored figures as it journals it, and Rebuild
// folds the whole journal again from nothing. Both run the same fold over
// the same ordered facts, so they produce the same rows.
package analytics
