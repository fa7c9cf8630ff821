// Types of the API objects the dashboard reads, as the server's OpenAPI
// document (/openapi.json) describes them. Only the fields pages use.

export interface Membership {
  tenant_id: string
  tenant_name: string
  role: string
}

export interface User {
  id: string
  email: string
  email_verified?: boolean
  mfa_enabled?: boolean
}

export interface Me {
  kind: 'user' | 'api_key' | 'client'
  id: string
  tenant_id: string
  scopes: string[]
  role?: string
  user?: User
  memberships?: Membership[]
}

export interface BrowserSession {
  tenant_id: string
  session_id: string
  expires_in: number
}

export interface Address {
  line1?: string
  line2?: string
  city?: string
  postal_code?: string
  state?: string
  country?: string
}

export interface Customer {
  id: string
  external_id?: string
  name: string
  email?: string
  currency: string
  address: Address
  tax_id?: string
  tax_status: string
  timezone: string
  metadata: Record<string, string>
  subjects: string[]
  archived_at?: string
  created_at: string
  updated_at: string
}

export interface CustomerInput {
  name: string
  email?: string
  external_id?: string
  currency: string
  address?: Address
  tax_id?: string
  timezone?: string
}

export interface Plan {
  id: string
  key: string
  name: string
  description?: string
  created_at: string
  updated_at: string
}

export interface Subscription {
  id: string
  customer_id: string
  plan_id: string
  version_id: string
  status: string
  quantity: string
  timezone: string
  started_at?: string
  trial_end?: string
  canceled_at?: string
  ended_at?: string
  current_period?: { start: string; end: string }
  created_at: string
}

export interface Entitlement {
  feature: string
  kind: 'boolean' | 'static' | 'metered'
  has_access: boolean
  value?: unknown
  limit: string | null
  used?: string
  remaining: string | null
  enforcement?: string
  subscription_id?: string
  period_start?: string
  period_end?: string
}

export interface Invoice {
  id: string
  customer_id: string
  subscription_id?: string
  status: 'draft' | 'open' | 'paid' | 'void' | 'uncollectible'
  number?: string
  currency: string
  period_start: string
  service_start?: string
  service_end?: string
  lines: InvoiceLine[]
  subtotal: string
  discount_total: string
  tax_total: string
  total: string
  credits_applied: string
  amount_due: string
  problems?: { code: string; message: string }[]
  finalize_at: string
  finalized_at?: string
  due_at?: string
  created_at?: string
}

export interface CreditBalance {
  customer_id: string
  currency: string
  available: string
}

export interface CreditEntry {
  id: string
  kind?: string
  amount: string
  currency: string
  description?: string
  expires_at?: string
  created_at: string
}

export interface UsageEventRecord {
  event: { id: string; source: string; type: string; subject: string; time: string }
  ingestedAt: string
}

export interface Member {
  user_id: string
  email: string
  role: string
  created_at: string
}

export interface Invitation {
  id: string
  email: string
  role: string
  created_at: string
  expires_at: string
  accepted_at?: string
  revoked_at?: string
}

export interface APIKey {
  id: string
  name: string
  prefix: string
  scopes: string[]
  expires_at?: string
  last_used_at?: string
  revoked_at?: string
  created_at: string
}

export interface CreatedAPIKey extends APIKey {
  key: string
}

export interface AuditEvent {
  id: string
  action: string
  actor_type: string
  actor_id: string
  target_type: string
  target_id: string
  ip: string
  data?: Record<string, unknown>
  created_at: string
}

export interface MeteringSettings {
  lateEventWindow: string
  default: boolean
}

export interface BillingSettings {
  invoice_prefix: string
  credit_note_prefix: string
  grace_seconds: number
  due_days: number
  seller: Record<string, unknown> & { name?: string; vat_id?: string }
  payment_terms?: string
  payment_means?: Record<string, unknown>
  [k: string]: unknown
}

export interface Session {
  id: string
  tenant_id: string
  ip: string
  user_agent: string
  created_at: string
  last_used_at: string
  expires_at: string
  current: boolean
}

export interface TOTPEnrollment {
  secret: string
  provisioning_uri: string
}

// ---- Catalog, usage and billing (dash2) ----

export interface Feature {
  id: string
  key: string
  name: string
  kind: 'static' | 'metered' | string
  meter_slug?: string
  limit?: string
  enforcement?: string
  created_at: string
}

export interface Tier {
  up_to: string | null
  unit_amount?: string
  flat_amount?: string
}

export type PriceModel = 'per_unit' | 'package' | 'graduated' | 'volume' | 'percentage'

export interface Price {
  model: PriceModel
  unit_amount?: string
  package_size?: string
  tiers?: Tier[]
  percentage?: string
  fixed_amount_per_event?: string
  minimum?: string
  maximum?: string
}

export interface Charge {
  key: string
  description?: string
  kind: 'fee' | 'usage'
  fee?: { amount: string; billed?: 'in_advance' | 'in_arrears' }
  meter?: string
  price?: Price
}

export interface VersionSpec {
  currency: string
  rounding?: string
  billing_interval: { unit: string; count?: number }
  anchor?: string
  trial_days?: number
  entitlements?: unknown[]
  charges: Charge[]
  minimum_commitment?: string
  metadata?: Record<string, string>
}

export interface PlanVersion extends VersionSpec {
  id: string
  plan_id: string
  version: number
  status: 'draft' | 'published' | 'archived'
  published_at?: string
  archived_at?: string
  created_at: string
  updated_at: string
}

export interface PriceComponent {
  kind: string
  tier?: number
  from?: string
  up_to?: string
  quantity: string
  unit_amount: string
  flat_amount: string
  amount: string
}

export interface PricePreview {
  currency: string
  quantity: string
  events: number
  components: PriceComponent[]
  subtotal: string
  adjustment: string
  adjusted_by?: string
  unrounded: string
  amount: string
}

export interface Meter {
  id: string
  slug: string
  name?: string
  description?: string
  eventType: string
  aggregation: string
  valueProperty?: string
  groupBy?: Record<string, string>
  managedBy: string
  createdAt: string
}

export interface UsageWindow {
  value: number | string
  windowStart: string
  windowEnd: string
  subject: string | null
  groupBy: Record<string, string | null>
}

export interface UsageResult {
  from: string
  to: string
  windowSize?: string
  data: UsageWindow[]
}

export interface EventTypeInfo {
  eventType: string
  hasSchema: boolean
  meters: string[]
}

export interface IngestedEvent {
  event: { id: string; source: string; type: string; subject: string; time: string; data?: unknown }
  ingestedAt: string
  storedAt: string
}

export interface InvoiceLine {
  id: string
  kind: string
  description: string
  quantity: string
  unit_amount?: string
  amount: string
  net_amount: string
  period_start: string
  period_end: string
}

export interface CreditNote {
  id: string
  invoice_id: string
  customer_id: string
  number: string
  currency: string
  reason?: string
  subtotal: string
  tax_total: string
  total: string
  refund_to_credits: boolean
  created_at: string
}

export interface Coupon {
  id: string
  code: string
  name: string
  percent_off?: string
  amount_off?: string
  currency?: string
  duration: string
  duration_periods?: number
  max_redemptions?: number
  redeem_by?: string
  redemptions: number
  created_at: string
}

export interface TaxRate {
  id: string
  name: string
  percentage: string
  category: string
  inclusive: boolean
  country?: string
  exemption_reason?: string
  created_at: string
}

// ---- Payments and dunning (docs/payments.md) ----
export interface Payment {
  id: string
  invoice_id: string
  customer_id: string
  provider: string
  provider_reference: string
  status: 'pending' | 'processing' | 'succeeded' | 'failed' | 'canceled'
  amount: string
  amount_refunded: string
  currency: string
  attempt: number
  decline_code?: string
  decline_kind?: 'hard' | 'soft'
  failure_message?: string
  note?: string
  paid_at?: string
  created_at: string
  updated_at: string
}

export interface PaymentMethod {
  id: string
  provider: string
  provider_reference: string
  brand: string
  last4: string
  exp_month: number
  exp_year: number
  status: string
  default: boolean
  created_at: string
}

export interface BalanceLine { invoice_id: string; number: string; status: string; currency: string; total: string; amount_due: string; due_at?: string; days_overdue: number }
export interface CustomerBalance { customer_id: string; currency: string; due: string; overdue: string; credits: string; net: string; lines: BalanceLine[] }

export interface AgingBuckets { currency: string; current: string; days_1_30: string; days_31_60: string; days_61_90: string; over_90: string; total: string; invoices: number }
export interface AgingReport { as_of: string; currencies: AgingBuckets[] }

export interface RetryPolicy { retry_days: number[]; max_attempts: number; reminder_days_before: number; grace_days: number; final_action: 'suspend' | 'cancel' | 'mark_uncollectible' }
export interface DunningSettings extends RetryPolicy { suspendable_features: string[]; keep_prepaid_access: boolean; dispute_suspends: boolean; dispute_lost: 'unpaid' | 'uncollectible' }
export interface DunningRun {
  id: string
  invoice_id: string
  invoice_number: string
  customer_id: string
  subscription_id: string
  amount: string
  currency: string
  status: 'active' | 'recovered' | 'exhausted' | 'closed'
  policy: RetryPolicy
  first_failed_at: string
  attempts: number
  next_step?: string
  next_at?: string
  hard_declined: boolean
  decline_code?: string
  final_action_taken?: string
  created_at: string
  ended_at?: string
}

export interface PaymentProvider { provider: string; configured: boolean; secret_key_hint?: string; webhook_secret_set: boolean; api_base?: string; webhook_url: string; updated_at?: string }

// ---- Risk (docs/risk.md) ----
export interface RiskReason { rule: string; version?: number; name?: string; action?: string; description: string; values: Record<string, unknown> }
export interface RiskDecision {
  id: string
  event_id?: string
  decision: 'allow' | 'review' | 'block'
  score: number
  reasons: RiskReason[]
  default: boolean
  features: { counters: Record<string, number>; graph: RiskGraphValues; lists: Record<string, boolean> }
  score_reasons: RiskReason[]
  shadow: RiskReason[]
  rule_errors: { rule: string; name: string; error: string }[]
  event?: Record<string, unknown>
  created_at: string
}
export interface RiskGraphValues { linked_accounts: number; linked_labelled_fraud: number; component_size: number }
export interface RiskRule { id: string; version: number; name: string; description?: string; action: string; mode: string; logic: unknown; status: string; created_at: string; activated_at?: string; retired_at?: string }
export interface RiskCase { id: string; decision_id: string; event_id: string; customer_id?: string; status: 'open' | 'resolved'; assignee?: string; resolution?: string; comments?: { id: string; author: string; body: string; created_at: string }[]; created_at: string; resolved_at?: string }
export interface RiskGraphNode { id: string; kind: string; key: string; label?: string; hops: number }
export interface RiskGraph { customer_id: string; hops: number; nodes: RiskGraphNode[]; edges: { from: string; to: string; last_seen: string }[]; truncated: boolean; features: RiskGraphValues }

// ---- Received documents (docs/documents.md) ----
export interface DocumentReport { format: string; violations: { path: string; rule: string; severity: string; message: string }[] | null; dropped: string[] | null }
export interface InboundDocument {
  id: string
  kind: string
  format: string
  status: 'valid' | 'invalid'
  number: string
  issue_date: string
  currency: string
  payable: string
  supplier_name: string
  supplier_key: string
  duplicate_of?: string
  content_hash: string
  size: number
  source: string
  received_at: string
  report: DocumentReport
}

// ---- Messaging (docs/realtime.md) ----
export interface Conversation { id: string; kind: 'private' | 'group'; title?: string; member_count: number; member_limit: number; last_seq: number; created_by: string; created_at: string; updated_at: string; membership?: { role: string; last_read_seq: number; unread: number } }

/** A chargeback, inquiry or early fraud warning (GET /api/v1/disputes). */
export interface Dispute {
  id: string
  invoice_id: string
  customer_id: string
  payment_id: string
  amount: string
  currency: string
  status: string
  reason: string
  provider_reference: string
  created_at: string
  updated_at: string
  closed_at: string | null
}

/** One entry of a customer's timeline (GET /api/v1/customers/{id}/timeline). */
export interface TimelineEntry {
  event_id: string
  type: string
  occurred_at: string
  summary: string
  object: { type: string; id: string }
  data: Record<string, string>
}
