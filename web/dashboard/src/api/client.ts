// The dashboard's one way to call the Abacus API. Every failure becomes an
// ApiError carrying the problem+json the server sent (RFC 9457), so pages
// show the server's own message, and forms put each `errors[].field`
// message next to the control it names.
import { session } from '../session'

export interface ProblemField {
  field: string
  message: string
  index?: number
}

export interface Problem {
  type?: string
  title?: string
  status: number
  detail?: string
  code?: string
  request_id?: string
  errors?: ProblemField[]
}

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly requestId: string
  readonly fields: ProblemField[]

  constructor(p: Problem) {
    super(p.detail || p.title || `request failed with status ${p.status}`)
    this.name = 'ApiError'
    this.status = p.status
    this.code = p.code ?? ''
    this.requestId = p.request_id ?? ''
    this.fields = p.errors ?? []
  }

  /** The message for one field (`email`, `address.country`, `query.search`), or ''. */
  fieldMessage(field: string): string {
    return this.fields.find((f) => f.field === field)?.message ?? ''
  }

  /** Messages for fields no control on the page shows: put them in the summary. */
  otherFields(shown: string[]): ProblemField[] {
    return this.fields.filter((f) => !shown.includes(f.field))
  }
}

/** The list shape every paginated route answers. */
export interface List<T> {
  data: T[]
  next_cursor: string
}

export type Query = Record<string, string | number | undefined | null>

export interface RequestOptions {
  query?: Query
  body?: unknown
  /** A body sent as is (a file), with its content type. */
  raw?: { body: Blob; type: string }
  signal?: AbortSignal
  retried?: boolean
}

function url(path: string, query?: Query): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  }
  const s = q.toString()
  return s ? `${path}?${s}` : path
}

async function problemOf(res: Response): Promise<ApiError> {
  let p: Problem = { status: res.status }
  try {
    p = { ...(await res.json()), status: res.status }
  } catch {
    p.detail = `${res.status} ${res.statusText}`
  }
  return new ApiError(p)
}

// Every request in flight can be cancelled at once, and later ones held
// off: signing out does both, so no page's request is answered 401 by the
// session it is ending. Holding matters: a poll whose timer fires while
// the sign-out's own request is on its way (a loaded machine) went out
// and was answered 401, a console error.
let everyRequest = new AbortController()

/** Cancels every request in flight and every later one (they reject with an AbortError) until resumeRequests. */
export function abortAll() {
  everyRequest.abort()
}

/** Lets requests go out again after abortAll (signing in). */
export function resumeRequests() {
  if (everyRequest.signal.aborted) everyRequest = new AbortController()
}

/**
 * request calls the API with the session's cookies (and the CSRF header
 * on state-changing methods). An expired access cookie is refreshed once;
 * every failure is thrown as an ApiError (a 401 then means the session has
 * ended: the router's guard shows the sign-in page on the next navigation).
 */
export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json'
  if (opts.raw) headers['Content-Type'] = opts.raw.type || 'application/octet-stream'
  Object.assign(headers, session.authHeaders(method))
  let res: Response
  try {
    res = await fetch(url(path, opts.query), {
      method,
      headers,
      body: opts.raw ? opts.raw.body : opts.body === undefined ? undefined : JSON.stringify(opts.body),
      credentials: 'same-origin',
      signal: opts.signal ? AbortSignal.any([opts.signal, everyRequest.signal]) : everyRequest.signal,
    })
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e
    throw new ApiError({ status: 0, code: 'network_error', detail: 'Abacus did not answer; check your connection and try again.' })
  }
  if (res.status === 401 && session.signedIn() && !opts.retried) {
    // The access cookie lasts 15 minutes: rotate the session once and retry.
    if (await session.refresh()) return request<T>(method, path, { ...opts, retried: true })
  }
  if (!res.ok) throw await problemOf(res)
  if (res.status === 204) return undefined as T
  return (await res.json()) as T
}

export const api = {
  get: <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', path, { query, signal }),
  post: <T>(path: string, body?: unknown) => request<T>('POST', path, { body: body ?? {} }),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, { body }),
  put: <T>(path: string, body: unknown) => request<T>('PUT', path, { body }),
  del: <T = void>(path: string) => request<T>('DELETE', path),
  upload: <T>(path: string, file: Blob, type: string) => request<T>('POST', path, { raw: { body: file, type } }),
}
