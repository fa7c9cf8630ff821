package usage

import "github.com/abacusbilling/abacus/internal/outbox"

// Metering's domain events (see outbox.Define): a meter after the change.
var (
	MeterCreated = outbox.Define[MeterRecord]("meter.created", 1, "meter", "A meter was created, through the API or the configuration file.")
	MeterUpdated = outbox.Define[MeterRecord]("meter.updated", 1, "meter", "A meter's definition changed.")
	MeterDeleted = outbox.Define[MeterRecord]("meter.deleted", 1, "meter", "A meter was deleted.")
)
