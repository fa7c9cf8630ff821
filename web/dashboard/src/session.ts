// The signed-in staff member. Pages read `session.state`; the API client
// asks it for credentials. Sign-in uses the existing staff identity
// (POST /api/v1/auth/login, with the MFA step when the account has it).
import { reactive } from 'vue'
import type { Me, Tokens } from './api/types'
import { api, ApiError } from './api/client'

const storageKey = 'abacus.session'

interface State {
  me: Me | null
  tokens: Tokens | null
}

const state = reactive<State>({ me: null, tokens: load() })

function load(): Tokens | null {
  try {
    const raw = sessionStorage.getItem(storageKey)
    return raw ? (JSON.parse(raw) as Tokens) : null
  } catch {
    return null
  }
}

function save(t: Tokens | null) {
  state.tokens = t
  if (t) sessionStorage.setItem(storageKey, JSON.stringify(t))
  else sessionStorage.removeItem(storageKey)
}

async function postJSON<T>(path: string, body: unknown): Promise<{ ok: boolean; status: number; data: T }> {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  })
  const data = res.status === 204 ? (undefined as T) : ((await res.json().catch(() => ({}))) as T)
  return { ok: res.ok, status: res.status, data }
}

let refreshing: Promise<boolean> | null = null

export const session = {
  state,

  signedIn(): boolean {
    return state.tokens !== null
  },

  /** Headers that carry the session on an API request. */
  authHeaders(_method: string): Record<string, string> {
    return state.tokens ? { Authorization: `Bearer ${state.tokens.access_token}` } : {}
  },

  /** Signs in; throws the problem (mfa_required, invalid_credentials…) as an ApiError. */
  async signIn(email: string, password: string, totpCode?: string): Promise<void> {
    const r = await postJSON<Tokens>('/api/v1/auth/login', { email, password, ...(totpCode ? { totp_code: totpCode } : {}) })
    if (!r.ok) throw new ApiError({ status: r.status, ...(r.data as object) })
    save(r.data)
    await session.loadMe()
  },

  /** Exchanges the refresh token once for all concurrent callers; false ends the session. */
  refresh(): Promise<boolean> {
    refreshing ??= (async () => {
      const t = state.tokens
      if (!t) return false
      const r = await postJSON<Tokens>('/api/v1/auth/refresh', { refresh_token: t.refresh_token }).catch(() => null)
      if (!r?.ok) {
        save(null)
        state.me = null
        return false
      }
      save(r.data)
      return true
    })().finally(() => (refreshing = null))
    return refreshing
  },

  async loadMe(): Promise<Me | null> {
    if (!state.tokens) return null
    try {
      state.me = await api.get<Me>('/api/v1/me')
    } catch {
      state.me = null
    }
    return state.me
  },

  async signOut(): Promise<void> {
    const t = state.tokens
    save(null)
    state.me = null
    if (t) await postJSON('/api/v1/auth/logout', { refresh_token: t.refresh_token }).catch(() => undefined)
  },

  tenantName(): string {
    const me = state.me
    return me?.memberships?.find((m) => m.tenant_id === me.tenant_id)?.tenant_name ?? ''
  },
}
