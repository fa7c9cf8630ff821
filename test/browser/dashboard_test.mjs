// Drives the dashboard of a running Abacus in Chromium, as a person would,
// and checks each page with axe-core. Run by browser_test.go, which starts
// the server, seeds the demo data and passes:
//   ABACUS_URL, ABACUS_EMAIL, ABACUS_PASSWORD  the server and its owner to be
//   ABACUS_SETUP_LINK                          the link its first start printed
//   CHROMIUM                                   the browser executable
//   SCREENSHOTS                                where each page's PNG goes
// Exits non-zero on the first failed check, printing what failed.
import { chromium } from 'playwright-core'
import { createRequire } from 'node:module'
import { readFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

const base = must('ABACUS_URL')
const email = must('ABACUS_EMAIL')
const password = must('ABACUS_PASSWORD')
const shots = must('SCREENSHOTS')
const setupLink = must('ABACUS_SETUP_LINK')
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
mkdirSync(shots, { recursive: true })

function must(name) {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`)
  console.log(`ok   ${what}`)
}

const browser = await chromium.launch({
  executablePath: must('CHROMIUM'),
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
})
const failures = []
// Requests a step provokes on purpose (a wrong password, a bad cursor):
// Chromium logs their 4xx as console errors, which are expected there.
const expected = new Set()
let step = 'start'

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  page.on('console', (m) => {
    if (m.type() !== 'error') return
    const url = m.location()?.url ?? ''
    if (m.text().startsWith('Failed to load resource') && [...expected].some((e) => url.includes(e))) return
    failures.push(`${step}: console error: ${m.text()} (${url})`)
  })
  page.on('pageerror', (e) => failures.push(`${step}: uncaught: ${e.message}`))
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:')) failures.push(`${step}: request outside the server: ${r.url()}`)
  })

  async function audit(name) {
    await page.evaluate(axeSource)
    const res = await page.evaluate(async () =>
      // eslint-disable-next-line no-undef
      axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }),
    )
    const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    for (const v of bad) {
      failures.push(`${name}: axe ${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`)
    }
    console.log(`axe  ${name}: ${res.violations.length} violations, ${bad.length} serious or critical`)
  }

  async function shot(name) {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true })
  }

  // A fresh install: the printed link creates the owner, who is then signed in.
  step = 'setup'
  await page.goto(setupLink)
  await page.getByLabel('E-mail').fill(email)
  await page.getByLabel('Password', { exact: true }).fill('password123')
  await page.getByLabel('Repeat the password').fill('password123')
  expected.add('/api/v1/auth/setup')
  await page.getByRole('button', { name: 'Create account and sign in' }).click()
  await page.locator('.field-error').first().waitFor()
  check((await page.locator('.field-error').first().innerText()).length > 0, 'a common password is refused next to the password field')
  expected.delete('/api/v1/auth/setup')
  await audit('setup')
  await shot('00-setup')
  await page.getByLabel('Password', { exact: true }).fill(password)
  await page.getByLabel('Repeat the password').fill(password)
  await page.getByRole('button', { name: 'Create account and sign in' }).click()
  await page.waitForURL((u) => u.pathname === '/customers')
  check((await page.getByTestId('user').innerText()).includes(email), 'the setup link created the owner and signed them in')
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.waitForURL((u) => u.pathname === '/sign-in')

  // Signed out, any page leads to the sign-in form, which keeps the target.
  step = 'sign-in'
  await context.clearCookies()
  const t0 = Date.now()
  await page.goto(`${base}/customers?search=a`)
  await page.getByLabel('E-mail').waitFor()
  console.log(`first load to the sign-in form: ${Date.now() - t0} ms`)
  check(new URL(page.url()).pathname === '/sign-in', 'signed out, /customers leads to /sign-in')
  await audit('sign-in')
  await shot('01-sign-in')

  // A wrong password shows the server's message.
  expected.add('/api/v1/auth/session')
  await page.getByLabel('E-mail').fill(email)
  await page.getByLabel('Password').fill('not the password')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').waitFor()
  check((await page.getByRole('alert').innerText()).includes('e-mail or password is wrong'), 'a wrong password shows the problem detail')
  await shot('02-sign-in-failed')
  expected.delete('/api/v1/auth/session')

  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL((u) => u.pathname === '/customers')
  check(new URL(page.url()).searchParams.get('search') === 'a', 'after sign-in the page asked first opens, with its filter')
  const cookies = await context.cookies()
  const byName = Object.fromEntries(cookies.map((c) => [c.name, c]))
  check(byName.abacus_access?.httpOnly && byName.abacus_refresh?.httpOnly && byName.abacus_access.sameSite === 'Strict',
    'the session is in HttpOnly, SameSite=Strict cookies')
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie)
  check(!stored.includes(byName.abacus_access.value) && !stored.includes('rt_'), 'no script-readable storage holds a token')

  // The customers list: frame, search in the URL, pagination.
  step = 'customers'
  await page.goto(`${base}/customers`)
  await page.locator('tbody tr').first().waitFor()
  check((await page.getByTestId('user').innerText()).includes(email), 'the header names the signed-in user')
  check((await page.getByTestId('tenant').innerText()).trim() !== '', 'the header names the tenant')
  const firstPage = await page.locator('tbody tr').count()
  check(firstPage === 20, `the first page shows 20 customers (got ${firstPage})`)
  await audit('customers')
  await shot('03-customers')

  await page.getByRole('button', { name: 'Next page' }).click()
  await page.waitForURL((u) => u.searchParams.has('cursor'))
  await page.locator('tbody tr').first().waitFor()
  check((await page.locator('tbody tr').count()) > 0, 'the next page has customers')
  await page.getByRole('button', { name: 'Previous page' }).click()
  await page.waitForURL((u) => !u.searchParams.has('cursor'))
  check((await page.locator('tbody tr').count()) === 20, 'previous page returns to the first')

  const name = (await page.locator('tbody tr td a').first().innerText()).trim()
  const word = name.split(/\s+/)[0]
  await page.getByLabel('Search').fill(word)
  await page.waitForURL((u) => u.searchParams.get('search') === word)
  await page.waitForFunction(
    (w) => [...document.querySelectorAll('tbody tr')].every((tr) => tr.textContent.toLowerCase().includes(w.toLowerCase())),
    word,
  )
  check((await page.locator('tbody tr').count()) >= 1, `searching "${word}" keeps only matching customers, and the URL holds the search`)
  await shot('04-customers-search')

  // A shared link opens the same view.
  await page.goto(`${base}/customers?search=${encodeURIComponent(word)}`)
  check((await page.getByLabel('Search').inputValue()) === word, 'a link with ?search= fills the search box')

  await page.getByLabel('Search').fill('zz-no-such-customer')
  await page.getByText('No customer matches').waitFor()
  check(true, 'a search without match shows the empty state with a hint')
  await audit('customers-empty')
  await shot('05-customers-empty')

  // A failing request shows the problem, with its request id.
  expected.add('/api/v1/customers')
  await page.goto(`${base}/customers?cursor=not-a-cursor`)
  await page.getByRole('alert').waitFor()
  const alert = await page.getByRole('alert').innerText()
  check(alert.includes('Request id') && /cursor/i.test(alert), 'a bad cursor shows the problem and the request id')
  await shot('06-customers-error')
  expected.delete('/api/v1/customers')

  // Phone width: the navigation folds behind a button.
  step = 'phone'
  await page.setViewportSize({ width: 390, height: 844 })
  await page.goto(`${base}/customers`)
  await page.locator('tbody tr').first().waitFor()
  check(!(await page.locator('nav#nav').isVisible()), 'at phone width the navigation is folded')
  await page.getByRole('button', { name: 'Menu' }).click()
  check(await page.locator('nav#nav').isVisible(), 'the Menu button opens it')
  await audit('customers-phone')
  await shot('07-customers-phone')
  await page.setViewportSize({ width: 1280, height: 800 })

  // Keyboard: the skip link is the first stop and moves to the content.
  step = 'keyboard'
  await page.goto(`${base}/customers`)
  await page.locator('tbody tr').first().waitFor()
  await page.keyboard.press('Tab')
  check((await page.evaluate(() => document.activeElement?.textContent)) === 'Skip to content', 'Tab first reaches "Skip to content"')

  step = 'sign-out'
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.waitForURL((u) => u.pathname === '/sign-in')
  await page.goto(`${base}/customers`)
  await page.waitForURL((u) => u.pathname === '/sign-in')
  check(true, 'after signing out the pages ask to sign in again')
} catch (e) {
  failures.push(`${step}: ${e.stack ?? e}`)
} finally {
  await browser.close()
}

if (failures.length) {
  console.error(`\n${failures.length} failure(s):\n` + failures.join('\n'))
  process.exit(1)
}
console.log('all browser checks passed')
