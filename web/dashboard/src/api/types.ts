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
  name?: string
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
