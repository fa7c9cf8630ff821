// Package timeline is a customer's history: every domain event that names
// a customer (subscriptions, invoices, credit notes, coupons, payments,
// disputes, payment methods, dunning, organizations of end users and
// their members, usage spikes), newest first, each with a short sentence
// and the object it is about.
//
// It is a projection. The durable consumer "timeline" on the events
// stream (outbox.ConsumeBatches) decodes each event through its
// producer's Go type, takes the customer id from the payload, and writes
// one row per event to timeline_entries, keyed by the event id: a
// redelivery, a second node or a rebuild writes nothing twice. The
// outbox table is never read. A new consumer starts at the beginning of
// the stream, so a first deployment indexes what the stream still holds
// (seven days). Rebuild (POST /api/v1/timeline/rebuild) reads the stream
// again for one tenant with an ordered consumer of its own and writes
// every entry afresh, while the durable consumer goes on.
//
// Read: GET /api/v1/customers/{id}/timeline (Service.List), tenant-scoped
// in the store, filtered by event type (exact, or a family such as
// "invoice.*") and time, newest first, paged by the last entry's event
// id. An entry's sentence is worded when read, from the facts stored.
//
// An organization's members' events name the organization only; its
// customer is the catalog customer whose external id is the
// organization's id (enduser/org bills it that way), found when they are
// indexed. Names and e-mail addresses are never copied: a personal
// organization is named after its end user, whose erasure must not leave
// them here.
//
// Not indexed, because their payloads name no customer: end users'
// account events (an end user belongs to organizations, not to one
// customer), risk.usage_anomaly v1 (it names a metering subject only; v2
// names the subject's customer and is indexed, unless no customer owned
// the subject). Risk decisions are not domain events; the customer's page
// reads them from the risk API.
package timeline
