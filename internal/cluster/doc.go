// Package cluster runs Abacus as a cluster on one machine, the way it runs
// on many: three nats-servers clustered with JetStream (streams replicated
// three times), PostgreSQL (found on 127.0.0.1:5432 or started from the
// installed binaries, as scripts/test does), Abacus processes per role
// group on 127.0.0.1 ports and a small HTTP load balancer in front of the
// HTTP nodes. `abacus dev cluster up|down|status` drives it
// (scripts/cluster wraps it); the chaos and rolling-restart tests in
// test/cluster start the same plan as child processes.
//
//	                    ┌──────── balancer (Balancer) ────────┐
//	clients ──HTTP──▶   │ /api/v1/realtime…  → realtime-1, -2 │
//	                    │ everything else    → api-1, api-2   │
//	                    └─────────────────────────────────────┘
//	api-1,2 (api,ingest,risk) · meter-1,2 · outbox · billing · … · realtime-1,2
//	         │ nats://n1,n2,n3 (JetStream R3)      │ postgres://…
//
// The balancer polls every backend's /readyz and sends requests only to
// ready ones; a request that could not be sent at all is retried on
// another backend, and one that failed after it was sent is retried only
// when it is idempotent (GET, HEAD, OPTIONS, PUT, DELETE, or any request
// with an Idempotency-Key header).
package cluster
