// Usage spikes: the per-customer spikes the risk module raised
// (risk.usage_anomaly), as the analytics usage trends answer them per point
// (GET /api/v1/analytics/usage, `alerts`). The Usage page reads one meter's
// over the UTC days its range touches, marks them on the chart and the
// table, and lists them with the customer each belongs to.
import { api, type List } from './api/client'

export interface UsageSpike {
  day: string // YYYY-MM-DD, UTC
  customer_id: string // '' when no customer owns the subject
  subject: string
  value: string // decimal, the day's usage
  baseline_median: string // decimal
  meter: string
  customer_name: string // '' when unknown
}

/** One point of GET /api/v1/analytics/usage. */
export interface UsagePoint {
  meter: string
  aggregation: string
  start: string // first day, YYYY-MM-DD (UTC)
  date: string // last day
  total: string
  previous: string
  growth: string // '' when previous is 0
  top_customers: { customer_id: string; subject: string; value: string }[]
  alerts: Omit<UsageSpike, 'meter' | 'customer_name'>[]
}

const utcDay = (d: Date) => d.toISOString().slice(0, 10)

/** The spikes of meter on the UTC days from through to, newest first, each with its customer's name. */
export async function loadSpikes(meter: string, from: Date, to: Date, signal?: AbortSignal): Promise<UsageSpike[]> {
  const l = await api.get<List<UsagePoint>>('/api/v1/analytics/usage',
    { meter, interval: 'day', from: utcDay(from), to: utcDay(to), top: 1 }, signal)
  return spikesOf(l.data, signal)
}

/** The spikes of points, newest first, each with its customer's name. */
export async function spikesOf(points: UsagePoint[], signal?: AbortSignal): Promise<UsageSpike[]> {
  const spikes = points.flatMap((p) => p.alerts.map((a) => ({ ...a, meter: p.meter, customer_name: '' })))
  const names = await customerNames([...new Set(spikes.map((s) => s.customer_id).filter(Boolean))], signal)
  for (const s of spikes) s.customer_name = names.get(s.customer_id) ?? ''
  return spikes.reverse()
}

// A spike names its customer by id; the operator knows them by name. The
// few customers of a range's spikes are read one by one; one that cannot
// be read keeps its id.
async function customerNames(ids: string[], signal?: AbortSignal): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  await Promise.all(ids.map(async (id) => {
    try {
      out.set(id, (await api.get<{ name: string }>(`/api/v1/customers/${encodeURIComponent(id)}`, undefined, signal)).name)
    } catch {
      // shown by id
    }
  }))
  return out
}

/** How far above its baseline a spike is, "×25" or "×2.5" (display only); '' when the baseline is 0. */
export function timesBaseline(s: UsageSpike): string {
  const base = Number(s.baseline_median)
  if (!(base > 0)) return ''
  const r = Number(s.value) / base
  return '×' + (r >= 10 ? Math.floor(r).toString() : (Math.floor(r * 10) / 10).toString())
}

/** A row's mark for its spikes: "spike ×25 Acme" for one, "2 spikes" for more. */
export function spikeMark(list: UsageSpike[]): string {
  if (list.length > 1) return `${list.length} spikes`
  const s = list[0]
  return ['spike', timesBaseline(s), s.customer_name || s.subject].filter(Boolean).join(' ')
}

/** The UTC day of a spike as the chart's band: [start, end) in unix seconds. */
export function dayBand(s: UsageSpike): { from: number; to: number } {
  const from = Date.parse(s.day + 'T00:00:00Z') / 1000
  return { from, to: from + 86400 }
}
