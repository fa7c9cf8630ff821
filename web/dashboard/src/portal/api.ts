// The customer portal's calls: /api/v1/portal/… with the portal session
// cookie (HttpOnly, set by POST /api/v1/portal/session) and the CSRF
// header on state-changing requests. Failures are the dashboard's
// ApiError, so the same components show problems next to their fields.
import { ApiError, type List, type Problem, type Query } from '../api/client'

function csrfToken(): string {
  const m = document.cookie.match(/(?:^|;\s*)abacus_csrf=([^;]+)/)
  return m ? decodeURIComponent(m[1]) : ''
}

async function request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  if (method !== 'GET' && csrfToken()) headers['X-CSRF-Token'] = csrfToken()
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  let res: Response
  try {
    res = await fetch('/api/v1/portal/' + path + (q.size ? `?${q}` : ''), {
      method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch {
    throw new ApiError({ status: 0, code: 'network_error', detail: 'The billing portal did not answer; check your connection and try again.' })
  }
  if (!res.ok) {
    let p: Problem = { status: res.status }
    try {
      p = { ...(await res.json()), status: res.status }
    } catch {
      p.detail = `${res.status} ${res.statusText}`
    }
    throw new ApiError(p)
  }
  return res.status === 204 ? (undefined as T) : ((await res.json()) as T)
}

export const portal = {
  get: <T>(path: string, query?: Query) => request<T>('GET', path, undefined, query),
  post: <T>(path: string, body: unknown = {}) => request<T>('POST', path, body),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, body),
  del: (path: string) => request<void>('DELETE', path),
  /** The URL of a document: pdf or ubl, inline or as a download. */
  documentURL: (kind: 'invoices' | 'credit-notes', id: string, format: 'pdf' | 'ubl', download = false) =>
    `/api/v1/portal/${kind}/${encodeURIComponent(id)}/document?format=${format}${download ? '&download=true' : ''}`,
}

export type { List }

export interface Address { line1?: string; line2?: string; city?: string; postal_code?: string; state?: string; country?: string }
export interface Customer { id: string; name: string; email?: string; currency: string; address: Address; tax_id?: string }
export interface Plan { id: string; key: string; name: string; description?: string }
export interface Subscription {
  id: string
  status: string
  plan: Plan
  current_period?: { start: string; end: string }
  ends_at?: string
  pending_plan?: Plan
  pending_at?: string
  can_change_plan: boolean
  can_cancel: boolean
}
export interface Entitlement {
  feature: string
  kind: string
  has_access: boolean
  limit: string | null
  used?: string
  remaining: string | null
  period_end?: string
}
export interface Branding { name: string; logo_url: string; primary_color: string; accent_color: string }
export interface Overview {
  session: { id: string; customer_id: string; expires_at: string }
  branding: Branding
  return_url?: string
  customer: Customer
  subscriptions: Subscription[]
  entitlements: Entitlement[]
  plans: Plan[]
  plan_change_when: 'now' | 'period_end'
}
export interface InvoiceLine { description: string; quantity: string; unit_price?: string; amount: string }
export interface Invoice {
  id: string
  number?: string
  status: string
  currency: string
  total: string
  amount_due: string
  tax_total: string
  subtotal: string
  finalized_at?: string
  due_at?: string
  period_start: string
  lines: InvoiceLine[]
}
export interface CreditNote { id: string; number: string; invoice_id: string; currency: string; total: string; reason?: string; created_at: string }
