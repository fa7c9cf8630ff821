// Measures the dashboard's first load with an empty cache, signed in, over
// loopback: RUNS fresh browser contexts each open / and wait for the
// Overview's figures. The time is the page's own clock, from the
// navigation's start to the first animation frame in which the customers
// figure is in the page (polled on every frame). Prints each run, the
// median, the load event and the gzip bytes of JavaScript the page
// fetched until then. Run it under hold_priority.sh where other work runs
// at a lower priority: Chromium starts its renderers at niceness 0. Not a test (timings depend on the machine); docs/benchmarks.md
// takes its figures from measure_first_load.sh, which runs it on the quiet
// wrapper:
//
//   ABACUS_URL=http://127.0.0.1:8080 ABACUS_EMAIL=… ABACUS_PASSWORD=… [RUNS=7] \
//     node test/browser/measure_first_load.mjs
import { chromium } from 'playwright-core'

const base = process.env.ABACUS_URL ?? 'http://127.0.0.1:8080'
const runs = Number(process.env.RUNS ?? 7)
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
})
const signIn = await fetch(`${base}/api/v1/auth/session`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ email: process.env.ABACUS_EMAIL, password: process.env.ABACUS_PASSWORD }),
})
if (!signIn.ok) throw new Error(`sign-in: ${signIn.status} ${await signIn.text()}`)
const cookies = signIn.headers.getSetCookie().map((c) => {
  const [pair, ...attrs] = c.split(';')
  const [name, value] = pair.split('=')
  const path = attrs.map((a) => a.trim()).find((a) => a.startsWith('Path='))?.slice(5) ?? '/'
  return { name, value, url: base + path }
})
const figures = []
const loads = []
let js = 0
for (let i = 0; i < runs; i++) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  await ctx.addCookies(cookies)
  const page = await ctx.newPage()
  // JavaScript the page fetched until its figures showed (gzip, as sent).
  let bytes = 0
  page.on('response', (r) => {
    if (r.url().endsWith('.js')) bytes += Number(r.headers()['content-length'] ?? 0)
  })
  await page.goto(`${base}/`, { waitUntil: 'commit' })
  const shown = await page.waitForFunction(() => document.querySelector('[data-testid=customers-count]') && performance.now(), null, { polling: 'raf', timeout: 30_000 })
  figures.push(Math.round(await shown.jsonValue()))
  js = bytes
  await page.waitForLoadState('load')
  loads.push(Math.round(await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd)))
  await ctx.close()
}
await browser.close()
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(`load event (ms): ${loads.join(' ')}; median ${median(loads)}`)
console.log(`to the Overview's figures (ms): ${figures.join(' ')}; median ${median(figures)}`)
console.log(`JavaScript of the first page until its figures showed: ${js} bytes gzip`)
