// Package realtime is the messaging module and its WebSocket gateway
// (the realtime role): private conversations (one per pair of users per
// tenant) and groups with roles, messages numbered per conversation
// without gaps, read receipts, typing, and delivery to every connection
// of every member on every node through NATS.
//
// A message from a connection:
//
//	send frame → validate → BeforeSend hook → one transaction: membership,
//	client_id dedup, seq = conversations.last_seq + 1, insert → ack to the
//	sender → publish the message frame to abacus.rt.<tenant>.u.<member>
//	for every member → each node holding a member's connections queues it
//	on each (bounded; a full queue disconnects with 4009) → the
//	connection's writer writes it once, in seq order (conn.deliver)
//
// The bus is best effort (core NATS); the database is the record: a
// client that missed anything resumes from the last seq it saw and the
// writer sends the rest from the history. The protocol is documented in
// docs/realtime.md.
package realtime
