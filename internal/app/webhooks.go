package app

import (
	"context"
	"sync"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/notifications"

	"github.com/abacusbilling/abacus/internal/seal"
	"github.com/abacusbilling/abacus/internal/webhooks"
)

// hooks is the webhooks service the api and webhooks roles share.
type hooks struct {
	once sync.Once
	svc  *webhooks.Service
	err  error
}

func (a *App) webhooks() (*webhooks.Service, error) {
	h := &a.mods.hooks
	h.once.Do(func() {
		c := a.Config.Webhooks
		key, err := seal.LoadOrCreateKey(c.EncryptionKey, a.Config.DataDir, "webhooks.key", "webhooks.encryption_key")
		if err != nil {
			h.err = err
			return
		}
		h.svc, h.err = webhooks.NewService(a.DB, a.Clock, a.Log.With("module", "webhooks"), webhooks.Config{
			AllowPrivateTargets: c.AllowPrivateTargets, EncryptionKey: key, Workers: c.Workers,
			EndpointConcurrency: c.EndpointConcurrency, Timeout: c.Timeout,
		}, a.Metrics)
		if h.err == nil {
			h.svc.Observe(webhookDeliveries)
		}
	})
	return h.svc, h.err
}

// webhookDeliveries records the webhook messages of finalized invoices and
// created credit notes in the documents' delivery history (notifications
// owns it), in the transaction that records each step.
func webhookDeliveries(ctx context.Context, tx *db.Tx, steps []webhooks.Outcome) error {
	var queued []notifications.Queued
	var later []notifications.Step
	for _, s := range steps {
		if s.Step != webhooks.StepQueued {
			later = append(later, notifications.Step{DeliveryID: s.MessageID, Status: s.Step, Reason: s.Reason,
				Attempt: s.Attempt, NextAttemptAt: s.NextAttemptAt, At: s.At})
			continue
		}
		if s.EventType == "invoice.finalized" || s.EventType == "credit_note.created" {
			queued = append(queued, notifications.Queued{TenantID: s.Tenant, SubjectType: s.AggregateType, SubjectID: s.AggregateID,
				DeliveryID: s.MessageID, Channel: notifications.DocumentWebhook, Recipient: s.URL, At: s.At})
		}
	}
	if err := notifications.RecordQueued(ctx, tx, queued); err != nil {
		return err
	}
	return notifications.RecordSteps(ctx, tx, later)
}
