package notifications

// The variables each built-in template renders, as sample data: the
// preview renders against it, saving a template checks its variables
// against it, and docs/notifications.md lists it. Every template also
// gets recipient{name, email}.

func tenantApp() map[string]any {
	return map[string]any{"tenant": map[string]any{"name": "Acme"}, "app": map[string]any{"name": "Acme Notes"}}
}

func with(base map[string]any, kv map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range kv {
		out[k] = v
	}
	return out
}

var sampleUser = map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"}

var sampleCustomer = map[string]any{"id": "cus_01jbx7k2q9m4r8t6v3w5y0z1ab", "name": "Acme GmbH", "email": "billing@acme.example"}

func endUserMail(link string) map[string]any {
	return with(tenantApp(), map[string]any{"link": link, "code": "493817", "user": sampleUser,
		"expires_at": "2026-11-02T10:30:00Z"})
}

// Samples returns the sample data of every built-in template key.
func Samples() map[string]map[string]any {
	staff := map[string]any{"email": "ada@example.com", "link": "https://abacus.example.com/verify-email?token=evt_sample",
		"expires": "24 hours", "tenant": map[string]any{"name": "Acme"}, "role": "admin"}
	sub := map[string]any{"id": "sub_01jbx7q8a0c2e4g6j8l0n2q4st", "plan": map[string]any{"id": "plan_01jbx7n3s5v7x9z1b3d5f7h9jk", "name": "Pro"}}
	invoice := map[string]any{"id": "inv_01jbx7r1b3d5f7h9k1m3p5r7tv", "number": "INV-2026-0007", "total": "58.31",
		"currency": "EUR", "due_at": "2026-11-16T00:00:00Z", "period": map[string]any{"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}}
	billing := func(kv map[string]any) map[string]any {
		return with(map[string]any{"tenant": map[string]any{"name": "Acme"}, "customer": sampleCustomer}, kv)
	}
	return map[string]map[string]any{
		"staff.verify_email":      staff,
		"staff.reset_password":    staff,
		"staff.invitation":        staff,
		"end_user.verify_email":   endUserMail("https://notes.acme.example/verify?token=tok_sample"),
		"end_user.reset_password": endUserMail("https://notes.acme.example/reset?token=tok_sample"),
		"end_user.magic_link":     endUserMail("https://notes.acme.example/magic?token=tok_sample"),
		"end_user.invitation": with(endUserMail("https://notes.acme.example/join?token=tok_sample"),
			map[string]any{"organization": map[string]any{"name": "Acme Research"}, "inviter": map[string]any{"name": "Grace Hopper"}}),
		"end_user.new_device": with(tenantApp(), map[string]any{"user": sampleUser, "link": "https://notes.acme.example/security",
			"device": map[string]any{"name": "Firefox on Linux", "ip": "203.0.113.7", "location": "Vienna, AT"}, "at": "2026-11-02T09:30:00Z"}),
		"subscription.trial_ending": billing(map[string]any{"subscription": sub, "trial_ends_at": "2026-11-05T00:00:00Z", "days_left": 3}),
		"usage.quota_warning": billing(map[string]any{"feature": map[string]any{"key": "api_calls", "name": "API calls"},
			"usage": "800000", "limit": "1000000", "percent": 80}),
		"usage.quota_reached": billing(map[string]any{"feature": map[string]any{"key": "api_calls", "name": "API calls"},
			"usage": "1000000", "limit": "1000000", "percent": 100}),
		"invoice.finalized": billing(map[string]any{"invoice": invoice, "link": "https://billing.acme.example/invoices/INV-2026-0007",
			"downloads": []any{}, "downloads_expire": ""}),
		"credit_note.issued": billing(map[string]any{"credit_note": map[string]any{"id": "cn_01jbx7s4c6e8g0j2l4n6q8s0uw",
			"number": "CN-2026-0002", "total": "12.00", "currency": "EUR", "invoice_number": "INV-2026-0007"},
			"downloads": []any{}, "downloads_expire": ""}),
		"payment.failed": billing(map[string]any{"invoice": invoice, "amount": "58.31", "currency": "EUR",
			"reason": "card declined", "retry_at": "2026-11-05T09:00:00Z", "link": "https://billing.acme.example/pay/INV-2026-0007"}),
		"payment.succeeded":      billing(map[string]any{"invoice": invoice, "amount": "58.31", "currency": "EUR"}),
		"subscription.suspended": billing(map[string]any{"subscription": sub, "reason": "payment overdue", "link": "https://billing.acme.example/pay"}),
		"subscription.restored":  billing(map[string]any{"subscription": sub}),
		"payment.retry_reminder": billing(map[string]any{"invoice_number": "INV-2026-0007", "amount": "58.31", "currency": "EUR",
			"retry_at": "2026-11-05T09:00:00Z", "final": true, "final_action": "suspend", "hard_decline": false,
			"link": "https://billing.acme.example/pay/INV-2026-0007", "collection_method": "charge_automatically",
			"final_action_at": "2026-11-08T09:00:00Z"}),
		"payment.method_expiring": billing(map[string]any{"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2026,
			"payment_method_id": "pm_01jbx8a1b2c3d4e5f6g7h8j9k0", "link": "https://billing.acme.example/billing"}),
		"payment.method_required": billing(map[string]any{"invoice_number": "INV-2026-0007", "amount": "58.31", "currency": "EUR",
			"decline_code": "stolen_card", "link": "https://billing.acme.example/pay/INV-2026-0007"}),
		// What realtime sends a member who had no live connection when
		// messages came (docs/realtime.md, Offline notifications).
		"conversation.new_messages": {"conversation": map[string]any{"id": "cnv_01jd6z8q4m7x2v3b9n5k1c0abc", "kind": "group",
			"title": "Weekend hike"}, "sender": map[string]any{"id": "user_bob"}, "text": "See you at 9?", "count": 3, "seq": 42},
		// The digest the prefs package sends for a category a recipient
		// batches: each item is a notification it held back.
		"notifications.digest": {"category": "usage", "count": 2, "items": []map[string]any{
			{"subject": "API calls at 80 % of your quota", "text": "You have used 800,000 of 1,000,000 API calls."},
			{"subject": "API calls at 100 % of your quota", "text": "You have used all 1,000,000 API calls."}}},
	}
}

// sampleFor returns the sample data of key with a recipient, or nil for a
// key the built-ins do not have (its variables cannot be checked).
func sampleFor(key string) map[string]any {
	s, ok := Samples()[key]
	if !ok {
		return nil
	}
	return with(s, map[string]any{"recipient": sampleUser})
}
