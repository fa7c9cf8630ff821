package notifications

import "time"

// Examples are the values the API reference shows for the notifications
// module's bodies (httpapi.Server.Example).
func Examples() []any {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	sent := at.Add(2 * time.Second)
	to := Recipient{Kind: RecipientEmail, Email: "billing@acme.example", Name: "Acme GmbH"}
	subject := "You have used 80 % of your API calls"
	html := "<!doctype html><html><body><p>Hello {{.customer.name}},</p></body></html>"
	return []any{
		SendInput{Template: "usage.quota_warning", Locale: "en", To: to, Channels: []string{ChannelEmail},
			Data: Samples()["usage.quota_warning"], DedupeKey: "quota-80-2026-11"},
		Notification{ID: "ntf_01jbx7t7d9f1h3k5m7p9r1t3vx", Template: "usage.quota_warning", Locale: "en", To: to, Category: CategoryUsage,
			Source: "api", Data: Samples()["usage.quota_warning"], CreatedAt: at,
			Deliveries: []DeliveryStatus{{ID: "dlv_01jbx7t8e0g2j4l6n8q0s2u4wy", Channel: ChannelEmail, State: StateSent, Attempts: 1,
				Subject: subject, SentAt: &sent, UpdatedAt: sent}}},
		NotificationTemplateInput{Subject: "Rechnung {{.invoice.number}} von {{.tenant.name}}", Text: "Hallo {{.customer.name}},\n\nanbei Ihre Rechnung {{.invoice.number}}.\n", HTML: html},
		NotificationTemplate{Key: "invoice.finalized", Locale: "de", Source: "tenant", Version: 3, Subject: "Rechnung {{.invoice.number}} von {{.tenant.name}}",
			Text: "Hallo {{.customer.name}},\n\nanbei Ihre Rechnung {{.invoice.number}}.\n", HTML: html, CreatedAt: at},
		NotificationTemplateSummary{Key: "invoice.finalized", Locale: "de", Source: "tenant", Version: 3, UpdatedAt: at},
		PreviewInput{Data: Samples()["invoice.finalized"]},
		Rendered{Locale: "de", Subject: "Rechnung INV-2026-0007 von Acme", Text: "Hallo Acme GmbH,\n\nanbei Ihre Rechnung INV-2026-0007.\n",
			HTML: "<!doctype html><html><body><p>Hallo Acme GmbH,</p></body></html>"},
		SendingSettings{From: "Acme Billing <billing@acme.example>", ReplyTo: "support@acme.example", DefaultLocale: "de", BounceSecretSet: true, UpdatedAt: at},
		SendingSettingsPatch{From: &[]string{"Acme Billing <billing@acme.example>"}[0], DefaultLocale: &[]string{"de"}[0]},
		BounceSecret{Secret: "nbs_3f9a1c7e5b2d8046a1c3e5f7092b4d6f8a0c2e4f"},
		SuppressionInput{Email: "gone@example.com", Detail: "asked not to be mailed"},
		Suppression{Email: "gone@example.com", Reason: ReasonHardBounce, Detail: "550 5.1.1 user unknown", CreatedAt: at},
		BounceReport{Events: []BounceEvent{{Type: "bounce", BounceType: "hard", Email: "gone@example.com",
			MessageID: "<dlv_01jbx7t8e0g2j4l6n8q0s2u4wy@abacus>", Detail: "550 5.1.1 user unknown", OccurredAt: at}}},
		BounceResult{Received: 1, Suppressed: 1},
		Trigger{EventType: "invoice.finalized", Template: "invoice.finalized", Recipients: []RecipientRule{{Type: ToCustomer}},
			Channels: []string{ChannelEmail}, Enabled: true, Source: "tenant", UpdatedAt: at},
		TriggerInput{Template: "usage.quota_warning", Recipients: []RecipientRule{{Type: ToCustomer}, {Type: ToStaff, Roles: []string{"owner"}}},
			Channels: []string{ChannelEmail}},
		DeliveryPreference{CustomerID: "cus_01jbx7k2q9m4r8t6v3w5y0z1ab", Channels: []string{"email"}, Formats: []string{"pdf", "ubl"},
			Emails: []string{"ap@acme.example"}, UpdatedAt: at},
		DeliveryPreferenceInput{Channels: []string{"email"}, Formats: []string{"pdf", "ubl"}, Emails: []string{"ap@acme.example"}},
		documentDeliveryExample(at),
	}
}

// documentDeliveryExample is an e-mail delivery of an invoice refused
// once by the SMTP server and sent on the retry.
func documentDeliveryExample(at time.Time) DocumentDelivery {
	retry, sent := at.Add(31*time.Second), at.Add(32*time.Second)
	return DocumentDelivery{ID: "dlv_01jbx7t8e0g2j4l6n8q0s2u4wy", Channel: DocumentEmail, Recipient: "ap@acme.example",
		Formats: []string{"pdf", "ubl"}, Status: HistorySent, Attempts: 2, CreatedAt: at, UpdatedAt: sent,
		History: []HistoryStep{{Status: HistoryQueued, At: at},
			{Status: HistoryFailed, At: at.Add(time.Second), Attempt: 1, Reason: "smtp: 451 4.3.0 mailbox busy, try later", NextAttemptAt: &retry},
			{Status: HistoryRetried, At: retry, Attempt: 2}, {Status: HistorySent, At: sent, Attempt: 2}}}
}
