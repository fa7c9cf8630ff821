// Measures the dashboard's first load with an empty cache, signed in, over
// loopback: N fresh browser contexts each open / and wait for the
// Overview's figures. Prints each run and the median, and the gzip bytes
// of JavaScript the page fetched. Not a test (timings depend on the
// machine); the numbers in docs/dashboard.md come from it:
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
  const ctx = await browser.newContext()
  await ctx.addCookies(cookies.map(({ name, value, url }) => ({ name, value, url })))
  const page = await ctx.newPage()
  let bytes = 0
  page.on('response', async (r) => {
    if (r.url().endsWith('.js')) bytes += Number((await r.allHeaders())['content-length'] ?? 0)
  })
  const t0 = Date.now()
  await page.goto(`${base}/`)
  await page.getByTestId('customers-count').waitFor()
  figures.push(Date.now() - t0)
  loads.push(Math.round(await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd)))
  await page.locator('.chart canvas').waitFor({ timeout: 30_000 })
  js = bytes
  await ctx.close()
}
await browser.close()
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(`load event (ms): ${loads.join(' ')}; median ${median(loads)}`)
console.log(`to the Overview's figures (ms): ${figures.join(' ')}; median ${median(figures)}`)
console.log(`JavaScript of the first page, chart included: ${js} bytes gzip`)
