// The parts every browser script shares: environment, one Chromium
// through playwright-core, lanes (a browser context and page each, run
// side by side where their steps are independent) whose pages record
// console errors, uncaught errors and requests leaving the server as
// failures, axe-core audits and screenshots.
import { chromium } from 'playwright-core'
import { createRequire } from 'node:module'
import { readFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

export function must(name) {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}

const started = Date.now()
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s`

// check fails the lane when ok is false; each passed check is printed with
// the seconds since the script started, so slow steps show in the log.
export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`)
  console.log(`ok   [${elapsed()}] ${what}`)
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
const axeTags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']

// launch starts the one Chromium every lane shares.
export async function launch() {
  const base = must('ABACUS_URL')
  const shots = must('SCREENSHOTS')
  mkdirSync(shots, { recursive: true })
  const browser = await chromium.launch({
    executablePath: must('CHROMIUM'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  const h = { base, shots, browser, failures: [] }
  h.lane = (name, opts) => lane(h, name, opts)
  // run runs one lane's steps; a failure is recorded and the other lanes go on.
  h.run = async (l, steps) => {
    try {
      await steps(l)
      console.log(`lane [${elapsed()}] ${l.name}: done with ${l.step}`)
    } catch (e) {
      h.failures.push(`${l.name}/${l.step}: ${e.stack ?? e}`)
    }
  }
  // finish closes the browser and exits non-zero when anything failed.
  h.finish = async (err) => {
    if (err) h.failures.push(`${err.stack ?? err}`)
    await browser.close()
    if (h.failures.length) {
      console.error(`\n${h.failures.length} failure(s):\n` + h.failures.join('\n'))
      process.exit(1)
    }
    console.log(`all browser checks passed in ${elapsed()}`)
    process.exit(0)
  }
  return h
}

// lane opens a browser context (its own cookies) with one 1280×800 page.
// l.step names the current step in failures; l.expected holds URL parts
// whose 4xx a step provokes (Chromium logs them as console errors).
async function lane(h, name, { viewport = { width: 1280, height: 800 } } = {}) {
  const { base } = h
  const context = await h.browser.newContext({ viewport })
  const page = await context.newPage()
  page.setDefaultTimeout(60_000)
  const l = { name, base, context, page, expected: new Set(), step: 'start' }
  const fail = (what) => h.failures.push(`${name}/${l.step}: ${what}`)
  page.on('console', (m) => {
    if (m.type() !== 'error') return
    const url = m.location()?.url ?? ''
    if (m.text().startsWith('Failed to load resource') && [...l.expected].some((e) => url.includes(e))) return
    fail(`console error: ${m.text()} (${url})`)
  })
  page.on('pageerror', (e) => fail(`uncaught: ${e.message}`))
  page.on('request', (r) => {
    // chrome:// and chrome-extension:// are the browser's own PDF viewer.
    if (!r.url().startsWith(base) && !/^(data|blob|chrome|chrome-extension):/.test(r.url())) fail(`request outside the server: ${r.url()}`)
  })
  l.audit = async (what) => {
    // axe stays loaded across the app's own navigations; a full load drops it.
    if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(axeSource)
    // Only violations are collected: the passed checks' details go unused.
    const res = await page.evaluate(
      // eslint-disable-next-line no-undef
      async (values) => axe.run(document, { runOnly: { type: 'tag', values }, resultTypes: ['violations'] }),
      axeTags,
    )
    const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    for (const v of bad) {
      h.failures.push(`${what}: axe ${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`)
    }
    console.log(`axe  [${elapsed()}] ${what}: ${res.violations.length} violations, ${bad.length} serious or critical`)
  }
  l.shot = (file) => page.screenshot({ path: join(h.shots, `${file}.png`), fullPage: true })
  // go opens a dashboard path. Once the app is loaded it navigates as a
  // link in the app would (its router), which keeps the loaded code and
  // axe; on a blank page, the portal or a server page it loads the URL.
  // Steps that test a full load or a shared link use page.goto.
  l.go = async (path) => {
    const inApp = await page.evaluate(async (p) => {
      const router = document.querySelector('#app')?.__vue_app__?.config.globalProperties.$router
      if (!router || location.pathname.startsWith('/portal') || p.startsWith('/portal')) return false
      await router.push(p)
      await new Promise((resolve) => requestAnimationFrame(resolve))
      return true
    }, path).catch(() => false)
    if (!inApp) await page.goto(base + path)
  }
  // signIn gives the lane its own session, as the sign-in form would.
  l.signIn = async (email, password) => {
    const r = await context.request.post(`${base}/api/v1/auth/session`, { data: { email, password } })
    if (!r.ok()) throw new Error(`signing in ${email}: ${r.status()} ${await r.text()}`)
  }
  return l
}

// apiCaller calls the API with the admin key, as the tenant's backend would.
export function apiCaller(base, key) {
  return async (method, path, body) => {
    const r = await fetch(base + path, {
      method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body),
    })
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`)
    return r.status === 204 ? undefined : r.json()
  }
}
