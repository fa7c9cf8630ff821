// Formatting for display. Amounts stay decimal strings end to end (never
// floats): they are shown as the API sends them, with their currency.

export function money(amount: string | null | undefined, currency: string): string {
  if (amount === null || amount === undefined || amount === '') return '—'
  return `${amount} ${currency}`
}

export function date(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleDateString() : '—'
}

export function dateTime(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '—'
}

/** Sums decimal strings exactly (BigInt on a common scale). */
export function addDecimals(values: string[]): string {
  const scale = Math.max(0, ...values.map((v) => (v.split('.')[1] ?? '').length))
  let sum = 0n
  for (const v of values) {
    const neg = v.startsWith('-')
    const [i, f = ''] = v.replace('-', '').split('.')
    const n = BigInt(i + f.padEnd(scale, '0'))
    sum += neg ? -n : n
  }
  const neg = sum < 0n
  const digits = (neg ? -sum : sum).toString().padStart(scale + 1, '0')
  const int = digits.slice(0, digits.length - scale)
  const frac = scale ? '.' + digits.slice(digits.length - scale) : ''
  return (neg ? '-' : '') + int + frac
}

/** The share of used in limit, 0–100, for a usage bar (display only). */
export function percent(used: string | undefined, limit: string | null): number {
  const u = Number(used ?? 0)
  const l = Number(limit ?? 0)
  if (!(l > 0)) return 0
  return Math.min(100, Math.max(0, (u / l) * 100))
}
