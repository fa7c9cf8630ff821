package notifications

// Categories group notifications for preferences and digests.
const (
	CategorySecurity = "security"
	CategoryAccount  = "account"
	CategoryBilling  = "billing"
	CategoryUsage    = "usage"
	CategoryGeneral  = "general"
	CategoryMessages = "messages"
)

// templateDefaults is what a template's notifications get when the message
// leaves it open.
type templateDefaults struct {
	Category string
	Critical bool
	// EmailOnly templates carry credentials (links, codes) that only the
	// mailbox's owner may read: not shown in an inbox or a push.
	EmailOnly bool
}

// channels are the default channels for a recipient: accounts also get
// the in-app inbox unless the template is e-mail only.
func (d templateDefaults) channels(to Recipient) []string {
	if d.EmailOnly || to.Kind == RecipientEmail {
		return []string{ChannelEmail}
	}
	return []string{ChannelEmail, ChannelInApp}
}

// builtinDefaults lists the built-in templates' defaults; unlisted keys
// are general, non-critical, e-mail and in-app.
var builtinDefaults = map[string]templateDefaults{
	"staff.verify_email":        {CategorySecurity, true, true},
	"staff.reset_password":      {CategorySecurity, true, true},
	"staff.invitation":          {CategoryAccount, true, true},
	"end_user.verify_email":     {CategorySecurity, true, true},
	"end_user.reset_password":   {CategorySecurity, true, true},
	"end_user.magic_link":       {CategorySecurity, true, true},
	"end_user.invitation":       {CategoryAccount, true, true},
	"end_user.new_device":       {CategorySecurity, true, false},
	"subscription.trial_ending": {CategoryBilling, false, false},
	"usage.quota_warning":       {CategoryUsage, false, false},
	"usage.quota_reached":       {CategoryUsage, true, false},
	"invoice.finalized":         {CategoryBilling, true, false},
	"credit_note.issued":        {CategoryBilling, true, false},
	"payment.failed":            {CategoryBilling, true, false},
	"payment.succeeded":         {CategoryBilling, false, false},
	"subscription.suspended":    {CategoryBilling, true, false},
	"subscription.restored":     {CategoryBilling, true, false},
	"payment.retry_reminder":    {CategoryBilling, true, false},
	"payment.method_required":   {CategoryBilling, true, false},
	"payment.method_expiring":   {CategoryBilling, false, false},
	"conversation.new_messages": {CategoryMessages, false, false},
}

func defaultsFor(key string) templateDefaults {
	if d, ok := builtinDefaults[key]; ok {
		return d
	}
	return templateDefaults{Category: CategoryGeneral}
}
