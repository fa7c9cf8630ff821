// The signed-in staff member. Pages read `session.state`; the API client
// asks it for the headers a request needs. The session lives in cookies
// the server sets (POST /api/v1/auth/session): the tokens are HttpOnly, so
// no script can read them; the readable abacus_csrf cookie is echoed in
// X-CSRF-Token on every state-changing request, which the server requires.
import { reactive } from 'vue'
import type { BrowserSession, Me } from './api/types'
import { abortAll, api, ApiError, resumeRequests } from './api/client'

interface State {
  me: Me | null
}

const state = reactive<State>({ me: null })

function csrfToken(): string {
  const m = document.cookie.match(/(?:^|;\s*)abacus_csrf=([^;]+)/)
  return m ? decodeURIComponent(m[1]) : ''
}

const safe = new Set(['GET', 'HEAD', 'OPTIONS'])

async function send<T>(method: string, path: string, body?: unknown): Promise<{ ok: boolean; status: number; data: T }> {
  const headers: Record<string, string> = { Accept: 'application/json', ...session.authHeaders(method) }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  })
  const data = res.status === 204 ? (undefined as T) : ((await res.json().catch(() => ({}))) as T)
  return { ok: res.ok, status: res.status, data }
}

let refreshing: Promise<boolean> | null = null

export const session = {
  state,

  /** Whether the browser holds a session (it may still have expired). */
  signedIn(): boolean {
    return csrfToken() !== ''
  },

  /** Headers that a request with method needs besides the cookies. */
  authHeaders(method: string): Record<string, string> {
    const t = csrfToken()
    return t && !safe.has(method.toUpperCase()) ? { 'X-CSRF-Token': t } : {}
  },

  /** Signs in; throws the problem (mfa_required, invalid_credentials…) as an ApiError. */
  async signIn(email: string, password: string, totpCode?: string): Promise<void> {
    const r = await send<BrowserSession>('POST', '/api/v1/auth/session', { email, password, ...(totpCode ? { totp_code: totpCode } : {}) })
    if (!r.ok) throw new ApiError({ status: r.status, ...(r.data as object) })
    resumeRequests()
    await session.loadMe()
  },

  /** Creates the first owner from the setup link's token and signs it in. */
  async setup(token: string, email: string, password: string): Promise<void> {
    const r = await send<BrowserSession>('POST', '/api/v1/auth/setup', { token, email, password })
    if (!r.ok) throw new ApiError({ status: r.status, ...(r.data as object) })
    resumeRequests()
    await session.loadMe()
  },

  /** Rotates the session once for all concurrent callers; false means it has ended. */
  refresh(): Promise<boolean> {
    refreshing ??= (async () => {
      const r = await send('POST', '/api/v1/auth/session/refresh').catch(() => null)
      if (!r?.ok) state.me = null
      return !!r?.ok
    })().finally(() => (refreshing = null))
    return refreshing
  },

  async loadMe(): Promise<Me | null> {
    try {
      state.me = await api.get<Me>('/api/v1/me')
    } catch {
      state.me = null
    }
    return state.me
  },

  /** Ends the session; the API's requests stay held until the next sign-in. */
  async signOut(): Promise<void> {
    abortAll()
    await send('DELETE', '/api/v1/auth/session').catch(() => undefined)
    state.me = null
  },

  tenantName(): string {
    const me = state.me
    return me?.memberships?.find((m) => m.tenant_id === me.tenant_id)?.tenant_name ?? ''
  },
}
