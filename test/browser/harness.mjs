// The parts every browser script shares: environment, Chromium through
// playwright-core, a page that records console errors, uncaught errors and
// requests leaving the server as failures, axe-core audits and
// screenshots. (dashboard_test.mjs predates it and keeps its own copy.)
import { chromium } from 'playwright-core'
import { createRequire } from 'node:module'
import { readFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

export function must(name) {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}

export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`)
  console.log(`ok   ${what}`)
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

// open starts Chromium with one 1280×800 page. h.step names the current
// step in failures; h.expected holds URL parts whose 4xx a step provokes.
export async function open() {
  const base = must('ABACUS_URL')
  const shots = must('SCREENSHOTS')
  mkdirSync(shots, { recursive: true })
  const browser = await chromium.launch({
    executablePath: must('CHROMIUM'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  page.setDefaultTimeout(60_000)
  const h = { base, browser, context, page, failures: [], expected: new Set(), step: 'start' }
  page.on('console', (m) => {
    if (m.type() !== 'error') return
    const url = m.location()?.url ?? ''
    if (m.text().startsWith('Failed to load resource') && [...h.expected].some((e) => url.includes(e))) return
    h.failures.push(`${h.step}: console error: ${m.text()} (${url})`)
  })
  page.on('pageerror', (e) => h.failures.push(`${h.step}: uncaught: ${e.message}`))
  page.on('request', (r) => {
    // chrome:// and chrome-extension:// are the browser's own PDF viewer.
    if (!r.url().startsWith(base) && !/^(data|blob|chrome|chrome-extension):/.test(r.url())) h.failures.push(`${h.step}: request outside the server: ${r.url()}`)
  })
  h.audit = async (name) => {
    await page.evaluate(axeSource)
    const res = await page.evaluate(async () =>
      // eslint-disable-next-line no-undef
      axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }),
    )
    const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    for (const v of bad) {
      h.failures.push(`${name}: axe ${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`)
    }
    console.log(`axe  ${name}: ${res.violations.length} violations, ${bad.length} serious or critical`)
  }
  h.shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true })
  // finish closes the browser and exits non-zero when anything failed.
  h.finish = async (err) => {
    if (err) h.failures.push(`${h.step}: ${err.stack ?? err}`)
    await browser.close()
    if (h.failures.length) {
      console.error(`\n${h.failures.length} failure(s):\n` + h.failures.join('\n'))
      process.exit(1)
    }
    console.log('all browser checks passed')
    process.exit(0)
  }
  return h
}
