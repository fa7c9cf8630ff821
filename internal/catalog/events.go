package catalog

import "github.com/abacusbilling/abacus/internal/outbox"

// The catalog's domain events (see outbox.Define); each payload is the
// object after the change, as the API returns it.
var (
	CustomerCreated  = outbox.Define[Customer]("customer.created", 1, "customer", "A customer was created.")
	CustomerUpdated  = outbox.Define[Customer]("customer.updated", 1, "customer", "A customer's details or subjects changed.")
	CustomerArchived = outbox.Define[Customer]("customer.archived", 1, "customer", "A customer was archived: it keeps its data and gets no new subscriptions.")
	FeatureCreated   = outbox.Define[Feature]("feature.created", 1, "feature", "A feature was created.")
	FeatureUpdated   = outbox.Define[Feature]("feature.updated", 1, "feature", "A feature's name, value, limit or enforcement changed.")
	PlanCreated      = outbox.Define[Plan]("plan.created", 1, "plan", "A plan was created, without versions yet.")

	PlanVersionPublished = outbox.Define[Version]("plan_version.published", 1, "plan_version", "A plan version was published: customers can subscribe to it.")
	PlanVersionArchived  = outbox.Define[Version]("plan_version.archived", 1, "plan_version", "A plan version was archived: no new subscriptions; existing ones continue.")
)
