package cluster

import "github.com/abacusbilling/abacus"

// Module declares cluster's boundary (see abacus.Module; checked by
// test/arch). A local multi-process cluster for development and tests:
// nats-servers clustered with JetStream, PostgreSQL found or started,
// Abacus processes per role group and an HTTP load balancer. Owns no
// table and imports no other module: the command line passes the role
// names in.
var Module = abacus.Module{
	Name:   "cluster",
	Tables: nil,
	Uses:   []string{"abacus"},
}
