// Drives Abacus with the official OpenMeter JavaScript SDK, unchanged:
// creates meters, ingests events (one, a batch, a duplicate), lists them
// with the v2 cursor API, and checks that queries with windowSize, groupBy
// and subject return exact results.
// Exits non-zero on the first mismatch.
//
//   ABACUS_URL=http://127.0.0.1:8080 ABACUS_API_KEY=abk_… node sdk_test.mjs
import { OpenMeter } from '@openmeter/sdk'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'

const baseUrl = process.env.ABACUS_URL
const apiKey = process.env.ABACUS_API_KEY
if (!baseUrl || !apiKey) {
  console.error('set ABACUS_URL and ABACUS_API_KEY')
  process.exit(2)
}
const om = new OpenMeter({ baseUrl, apiKey })
const run = randomBytes(4).toString('hex')
const type = `sdk_tokens_${run}`
const minute = 60_000
const hour = 60 * minute
// Two whole hours that have already passed, so windows are deterministic.
const base = Math.floor(Date.now() / hour) * hour - 2 * hour
const from = new Date(base - hour)
const to = new Date(base + 2 * hour)

function step(name) {
  console.log(`- ${name}`)
}

async function main() {
  step('create meters')
  const sum = await om.meters.create({
    slug: `${type}_sum`,
    name: 'Tokens',
    description: 'tokens by model',
    eventType: type,
    aggregation: 'SUM',
    valueProperty: '$.tokens',
    groupBy: { model: '$.model' },
  })
  assert.equal(sum.slug, `${type}_sum`)
  assert.equal(sum.aggregation, 'SUM')
  assert.equal(sum.eventType, type)
  assert.equal(sum.valueProperty, '$.tokens')
  assert.deepEqual(sum.groupBy, { model: '$.model' })
  await om.meters.create({ slug: `${type}_count`, eventType: type, aggregation: 'COUNT' })

  step('get and list meters')
  const got = await om.meters.get(`${type}_sum`)
  assert.equal(got.slug, `${type}_sum`)
  const list = await om.meters.list()
  const slugs = (Array.isArray(list) ? list : list.items ?? list.data ?? []).map((m) => m.slug)
  assert.ok(slugs.includes(`${type}_sum`) && slugs.includes(`${type}_count`), `list lacks the meters: ${slugs}`)

  const events = [
    { id: `${run}-1`, subject: 'cust-a', at: base + 1 * minute, tokens: 10, model: 'gpt-4' },
    { id: `${run}-2`, subject: 'cust-a', at: base + 30 * minute, tokens: 5.5, model: 'gpt-4' },
    { id: `${run}-3`, subject: 'cust-b', at: base + 61 * minute, tokens: 100, model: 'gpt-3' },
    { id: `${run}-4`, subject: 'cust-a', at: base + 90 * minute, tokens: 2.25, model: 'gpt-3' },
  ]
  const toEvent = (e) => ({
    id: e.id,
    source: 'sdk-test',
    type,
    subject: e.subject,
    time: new Date(e.at),
    data: { tokens: e.tokens, model: e.model },
  })

  step('ingest one event')
  await om.events.ingest(toEvent(events[0]))
  step('ingest a batch')
  await om.events.ingest(events.slice(1).map(toEvent))
  step('ingest a duplicate (same source and id): accepted, not counted again')
  await om.events.ingest(toEvent(events[0]))
  step('ingest without id, source and time (SDK defaults), type of another meter')
  await om.events.ingest({ type: `${type}_other`, subject: 'cust-a', data: { tokens: 1 } })

  step('wait until queryable')
  const deadline = Date.now() + 30_000
  for (;;) {
    const r = await om.meters.query(`${type}_count`, { from, to })
    const n = r.data.reduce((s, row) => s + row.value, 0)
    if (n === events.length) break
    assert.ok(n < events.length, `COUNT is ${n}, more than the ${events.length} events sent`)
    if (Date.now() > deadline) throw new Error(`COUNT is ${n} after 30 s, want ${events.length}`)
    await new Promise((r) => setTimeout(r, 50))
  }

  step('list events (v2): cursor pagination and a type filter')
  const listed = []
  let cursor
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10, 'listV2 does not end')
    const page = await om.events.listV2({ limit: 3, cursor, filter: JSON.stringify({ type: { $eq: type } }) })
    assert.ok(Array.isArray(page.items), JSON.stringify(page))
    for (const it of page.items) {
      assert.equal(it.event.type, type)
      assert.ok(it.event.time instanceof Date, 'event.time is not a date')
      listed.push(it.event.id)
    }
    cursor = page.nextCursor
    if (!cursor) break
  }
  assert.deepEqual(listed.sort(), events.map((e) => e.id).sort(), 'each stored event once, the duplicate not again')

  // expected groups events by window (ms, or 'day' for UTC days) and keys.
  function expected(windowMs, keyOf = () => '') {
    const m = new Map()
    for (const e of events) {
      const start = windowMs ? Math.floor(e.at / windowMs) * windowMs : from.getTime()
      const k = `${start}|${keyOf(e)}`
      m.set(k, (m.get(k) ?? 0) + e.tokens)
    }
    return [...m.entries()].map(([k, v]) => `${k}=${v}`).sort()
  }
  function actual(rows, keyOf = () => '', windowed = true) {
    return rows
      .map((r) => {
        assert.ok(r.windowStart instanceof Date && r.windowEnd instanceof Date, 'windowStart/windowEnd are not dates')
        assert.equal(typeof r.value, 'number', `value ${r.value} is not a JSON number`)
        return `${windowed ? r.windowStart.getTime() : from.getTime()}|${keyOf(r)}=${r.value}`
      })
      .sort()
  }

  step('query: one total over the range')
  let r = await om.meters.query(`${type}_sum`, { from, to })
  assert.equal(r.data.length, 1, JSON.stringify(r))
  assert.equal(r.data[0].value, 117.75)
  assert.equal(r.from.getTime(), from.getTime())
  assert.equal(r.to.getTime(), to.getTime())

  step('query: windowSize HOUR')
  r = await om.meters.query(`${type}_sum`, { from, to, windowSize: 'HOUR' })
  assert.equal(r.windowSize, 'HOUR')
  assert.deepEqual(actual(r.data), expected(hour))
  for (const row of r.data) assert.equal(row.windowEnd.getTime() - row.windowStart.getTime(), hour)

  step('query: windowSize DAY, windowTimeZone UTC')
  r = await om.meters.query(`${type}_sum`, { from, to, windowSize: 'DAY', windowTimeZone: 'UTC' })
  assert.deepEqual(actual(r.data), expected(24 * hour))

  step('query: groupBy model')
  r = await om.meters.query(`${type}_sum`, { from, to, groupBy: ['model'] })
  assert.deepEqual(actual(r.data, (x) => x.groupBy.model, false), expected(0, (e) => e.model))

  step('query: windowSize HOUR, groupBy model and subject')
  r = await om.meters.query(`${type}_sum`, { from, to, windowSize: 'HOUR', groupBy: ['model', 'subject'] })
  assert.deepEqual(
    actual(r.data, (x) => `${x.groupBy.model}/${x.subject}`),
    expected(hour, (e) => `${e.model}/${e.subject}`),
  )

  step('query: subject filter')
  r = await om.meters.query(`${type}_sum`, { from, to, subject: ['cust-a'] })
  assert.equal(r.data.length, 1, JSON.stringify(r))
  assert.equal(r.data[0].value, 17.75)
  assert.equal(r.data[0].subject, 'cust-a')

  step('query: filterGroupBy model=gpt-3')
  r = await om.meters.query(`${type}_sum`, { from, to, filterGroupBy: { model: 'gpt-3' } })
  assert.equal(r.data.reduce((s, row) => s + row.value, 0), 102.25)

  step('query: COUNT with POST body')
  r = await om.meters.queryPost(`${type}_count`, { from, to })
  assert.equal(r.data.reduce((s, row) => s + row.value, 0), 4)

  step('errors: unknown meter is an HTTPError 404')
  await assert.rejects(om.meters.query(`${type}_nope`, { from, to }), (err) => err.status === 404)

  console.log(`OK: OpenMeter SDK against ${baseUrl}`)
}

main().catch((err) => {
  console.error('FAIL:', err?.message ?? err)
  if (err?.__raw) console.error(JSON.stringify(err.__raw, null, 2))
  process.exit(1)
})
