// The dashboard's frame, driven as a person would, with axe-core on each
// page: the setup link, sign-in (a wrong password, then the right one),
// the session cookies, customers (list, search, pagination, empty and
// error states, a new customer, a customer's page), the Overview's live
// usage, staff and keys, the audit log, settings, phone width, keyboard,
// the first load with an empty cache, MFA and sign-out. run.mjs calls
// each function on a lane (harness.mjs).
import { createHmac } from 'node:crypto'
import { check } from './harness.mjs'

// totp is RFC 6238 (SHA-1, 6 digits, 30 s) for a base32 secret.
function totp(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0')
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)))
  const h = createHmac('sha1', key).update(counter).digest()
  const o = h[h.length - 1] & 0xf
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0')
}

// setupOwner creates the owner from the link the first start printed
// (a common password refused first), then signs out.
export async function setupOwner(l, { email, password, setupLink }) {
  const { page, audit, shot } = l
  // A fresh install: the printed link creates the owner, who is then signed in.
  l.step = 'setup'
  await page.goto(setupLink)
  await page.getByLabel('E-mail').fill(email)
  await page.getByLabel('Password', { exact: true }).fill('password123')
  await page.getByLabel('Repeat the password').fill('password123')
  l.expected.add('/api/v1/auth/setup')
  await page.getByRole('button', { name: 'Create account and sign in' }).click()
  await page.locator('.field-error').first().waitFor()
  check((await page.locator('.field-error').first().innerText()).length > 0, 'a common password is refused next to the password field')
  l.expected.delete('/api/v1/auth/setup')
  await audit('setup')
  await shot('00-setup')
  await page.getByLabel('Password', { exact: true }).fill(password)
  await page.getByLabel('Repeat the password').fill(password)
  await page.getByRole('button', { name: 'Create account and sign in' }).click()
  await page.waitForURL((u) => u.pathname === '/')
  check((await page.getByTestId('user').innerText()).includes(email), 'the setup link created the owner and signed them in')
  await page.getByRole('button', { name: 'Sign out', exact: true }).click()
  await page.waitForURL((u) => u.pathname === '/sign-in')
}

// frame drives sign-in and the frame's pages; apiKey sends live usage.
export async function frame(l, { email, password, apiKey, call }) {
  const { base, page, context, audit, shot } = l
  // Signed out, any page leads to the sign-in form, which keeps the target.
  l.step = 'sign-in'
  await context.clearCookies()
  const t0 = Date.now()
  await page.goto(`${base}/customers?search=a`)
  await page.getByLabel('E-mail').waitFor()
  console.log(`first load to the sign-in form: ${Date.now() - t0} ms`)
  check(new URL(page.url()).pathname === '/sign-in', 'signed out, /customers leads to /sign-in')
  await audit('sign-in')
  await shot('01-sign-in')

  // A wrong password shows the server's message.
  l.expected.add('/api/v1/auth/session')
  await page.getByLabel('E-mail').fill(email)
  await page.getByLabel('Password').fill('not the password')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').waitFor()
  check((await page.getByRole('alert').innerText()).includes('e-mail or password is wrong'), 'a wrong password shows the problem detail')
  await shot('02-sign-in-failed')
  l.expected.delete('/api/v1/auth/session')

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
  l.step = 'customers'
  await l.go(`/customers`)
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
  // The URL changes before the first page has loaded again: wait for its rows.
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 20)
  check((await page.locator('tbody tr').count()) === 20, 'previous page returns to the first')

  const name = (await page.locator('tbody tr td a').first().innerText()).trim()
  const word = name.split(/\s+/)[0]
  await page.getByLabel('Search').fill(word)
  await page.waitForURL((u) => u.searchParams.get('search') === word)
  await page.waitForFunction(
    (w) => {
      const rows = [...document.querySelectorAll('tbody tr')]
      return rows.length > 0 && rows.every((tr) => tr.textContent.toLowerCase().includes(w.toLowerCase()))
    },
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
  l.expected.add('/api/v1/customers')
  await l.go(`/customers?cursor=not-a-cursor`)
  await page.getByRole('alert').waitFor()
  const alert = await page.getByRole('alert').innerText()
  check(alert.includes('Request id') && /cursor/i.test(alert), 'a bad cursor shows the problem and the request id')
  await shot('06-customers-error')
  l.expected.delete('/api/v1/customers')

  // Create a customer: the API's field messages appear next to the fields.
  l.step = 'new-customer'
  await l.go(`/customers`)
  await page.getByRole('link', { name: 'New customer' }).click()
  await page.getByLabel('Name').fill('Quokka Analytics GmbH')
  await page.getByLabel('Currency').fill('EURO')
  await page.getByLabel('Country').fill('DE')
  l.expected.add('/api/v1/customers')
  await page.getByRole('button', { name: 'Create customer' }).click()
  const currencyError = page.locator('.field.invalid', { has: page.getByLabel('Currency') }).locator('.field-error')
  await currencyError.waitFor()
  check(/currency/i.test(await currencyError.innerText()) || (await currencyError.innerText()).length > 0, 'a bad currency is explained under the Currency field')
  l.expected.delete('/api/v1/customers')
  await audit('new-customer')
  await shot('08-new-customer-invalid')
  await page.getByLabel('Currency').fill('EUR')
  await page.getByRole('button', { name: 'Create customer' }).click()
  await page.waitForURL((u) => /^\/customers\/cus_/.test(u.pathname))
  await page.getByRole('heading', { name: 'Quokka Analytics GmbH' }).waitFor()
  await page.getByText('No subscription').waitFor()
  check(true, 'the new customer opens on its page, with the empty states of its sections')
  await shot('09-new-customer-detail')
  await l.go(`/customers?search=Quokka`)
  await page.locator('tbody tr').first().waitFor()
  check((await page.locator('tbody tr').count()) === 1, 'the new customer is found by search')

  // A demo customer with a subscription, an entitlement with a quota, invoices.
  l.step = 'customer-detail'
  // 13 more events (customer.updated) give its timeline a second page;
  // the timeline role indexes them moments after they commit.
  const baker = (await call('GET', `/api/v1/customers?search=${encodeURIComponent('Bäckerei')}`)).data[0]
  for (let i = 0; i < 13; i++) await call('PATCH', `/api/v1/customers/${baker.id}`, { metadata: { browser_visit: String(i) } })
  for (let tries = 0; (await call('GET', `/api/v1/customers/${baker.id}/timeline?limit=100`)).data.length < 21; tries++) {
    if (tries > 200) throw new Error('the 13 customer.updated events did not reach the timeline within 20 s')
    await new Promise((r) => setTimeout(r, 100))
  }
  await l.go(`/customers?search=${encodeURIComponent('Bäckerei')}`)
  await page.locator('tbody tr td a').first().click()
  await page.waitForURL((u) => /^\/customers\/cus_/.test(u.pathname))
  await page.locator('section', { hasText: 'Subscriptions' }).locator('tbody tr').first().waitFor()
  check(/active|trialing/.test(await page.locator('section', { hasText: 'Subscriptions' }).locator('tbody').innerText()), 'the customer page shows the subscription and its status')
  await page.getByRole('meter').first().waitFor()
  const bar = page.getByRole('meter').first()
  check(/used/.test((await bar.getAttribute('aria-valuetext')) ?? ''), `an entitlement shows its usage against the quota (${await bar.getAttribute('aria-valuetext')})`)
  await page.locator('section', { hasText: 'Invoices' }).locator('tbody tr').first().waitFor()
  check(true, 'the customer page lists its invoices')
  await page.getByText('Available credit').waitFor()
  // The timeline: the demo's own events, indexed by the timeline role.
  const timeline = page.getByTestId('timeline')
  await timeline.locator('li').first().waitFor()
  const entries = await timeline.locator('li').allInnerTexts()
  check(entries.some((t) => /Subscription to .+ (created|became active|started its trial)/.test(t)) || entries.some((t) => /Invoice .+ (finalized|paid)/.test(t)),
    `the timeline shows the customer's events as sentences (${entries.length} on the first page, e.g. "${entries[0]?.replace(/\s+/g, ' ')}")`)
  const pager = page.getByRole('navigation', { name: 'Timeline pages' })
  const firstID = await timeline.locator('li').first().getAttribute('data-event-id')
  await pager.getByRole('button', { name: 'Next page' }).click()
  await page.waitForURL((u) => u.searchParams.has('tl_cursor') && !u.searchParams.has('cursor'))
  await page.waitForFunction((first) => {
    const id = document.querySelector('[data-testid=timeline] li')?.getAttribute('data-event-id')
    return id && id !== first
  }, firstID)
  check(entries.length === 20, `the timeline pages by 20 (${entries.length}), with its own cursor in the URL (tl_cursor, not the invoices' cursor)`)
  await page.getByLabel('Show', { exact: true }).selectOption('invoices')
  await page.waitForURL((u) => u.searchParams.get('tl_kind') === 'invoices' && !u.searchParams.has('tl_cursor'))
  await timeline.locator('li').first().waitFor()
  const invoiceEntries = await timeline.locator('li').allInnerTexts()
  check(invoiceEntries.every((t) => /invoice|credit note|coupon/i.test(t)), `the kind filter, in the URL (tl_kind), leaves only invoice entries (${invoiceEntries.length})`)
  await audit('customer-detail')
  await shot('10-customer-detail')
  const invoiceLink = timeline.getByRole('link', { name: /^Invoice / }).first()
  const invoiceHref = await invoiceLink.getAttribute('href')
  await invoiceLink.click()
  await page.waitForURL((u) => u.pathname === invoiceHref)
  check(/^\/billing\/invoices\/inv_/.test(invoiceHref ?? ''), `a timeline entry links to what it is about (${invoiceHref})`)

  // Overview: counts, and usage sent now appears as a live rate.
  l.step = 'overview'
  const now = new Date().toISOString()
  const batch = Array.from({ length: 120 }, (_, i) => ({
    specversion: '1.0', id: `browser-live-${i}`, source: 'browser-test', type: 'browser_ping', subject: 'browser', time: now, data: {},
  }))
  const sent = await fetch(`${base}/api/v1/events`, {
    method: 'POST', headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/cloudevents-batch+json' }, body: JSON.stringify(batch),
  })
  check(sent.status === 204 || sent.status === 202, `usage sent now (${sent.status})`)
  await l.go(`/`)
  // Other lanes may add customers meanwhile: the figure lies between the
  // API's counts before and after, and includes this lane's six.
  const countCustomers = async () => (await call('GET', '/api/v1/customers?limit=100')).data.length
  const before = await countCustomers()
  await page.getByTestId('customers-count').waitFor()
  const shown = Number((await page.getByTestId('customers-count').innerText()).trim())
  const after = await countCustomers()
  check(shown >= 26 && before <= shown && shown <= after, `the overview counts the customers (${shown}; the API had ${before}, then ${after})`)
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=usage-rate]')?.textContent?.replace(/[^0-9.]/g, '') ?? 0) > 0, null, { timeout: 60_000 })
  check(true, `the usage sent appears as events per second (${await page.getByTestId('usage-rate').innerText()})`)
  await page.locator('.chart canvas').waitFor() // a second sample draws the line
  await audit('overview')
  await shot('11-overview')

  // Staff & API keys: create a key, shown once.
  l.step = 'staff'
  await page.getByRole('link', { name: 'Staff & API keys' }).click()
  await page.getByRole('heading', { name: 'Members' }).waitFor()
  await page.locator('section', { hasText: 'Members' }).getByText(email).first().waitFor()
  await page.getByLabel('Name').fill('reporting')
  await page.getByRole('button', { name: 'Create key' }).click()
  await page.getByTestId('new-key').waitFor()
  check((await page.getByTestId('new-key').innerText()).startsWith('abk_'), 'a new API key is shown once')
  await page.getByLabel('E-mail').fill('sam@example.com')
  await page.getByRole('button', { name: 'Send invitation' }).click()
  await page.getByText('Invitation sent to sam@example.com').waitFor()
  check(true, 'an invitation can be sent')
  l.expected.add('/api/v1/members/')
  await page.getByLabel(`Role of ${email}`).selectOption('admin')
  await page.getByRole('alert').first().waitFor()
  const lastOwner = await page.getByRole('alert').first().innerText()
  check(/owner/i.test(lastOwner), `the last owner cannot demote themselves: "${lastOwner.split('\n')[0]}"`)
  await page.waitForFunction((e) => document.querySelector(`select[aria-label="Role of ${e}"]`)?.value === 'owner', email)
  l.expected.delete('/api/v1/members/')
  await audit('staff')
  await shot('12-staff')

  // Audit log with a filter in the URL.
  l.step = 'audit'
  await page.getByRole('link', { name: 'Audit log' }).click()
  await page.locator('tbody tr').first().waitFor()
  await page.getByLabel('Action').fill('api_key.created')
  await page.getByRole('button', { name: 'Apply' }).click()
  await page.waitForURL((u) => u.searchParams.get('action') === 'api_key.created')
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('tbody tr')]
    return rows.length > 0 && rows.every((tr) => tr.textContent.includes('api_key.created'))
  })
  check((await page.locator('tbody tr').count()) >= 1, 'the audit log filters by action, held in the URL')
  await audit('audit')
  await shot('13-audit')

  // Settings: a bad late window is explained under its field.
  l.step = 'settings'
  await page.getByRole('link', { name: 'Settings' }).click()
  await page.getByLabel('Late-event window').waitFor()
  await page.waitForFunction(() => document.querySelector('input[name=lateEventWindow]')?.value !== '')
  await page.getByLabel('Late-event window').fill('forever')
  l.expected.add('/api/v1/settings/metering')
  await page.getByRole('button', { name: 'Save metering settings' }).click()
  await page.locator('.field.invalid .field-error').first().waitFor()
  check(true, 'a bad late-event window is explained under its field')
  l.expected.delete('/api/v1/settings/metering')
  await page.getByLabel('Late-event window').fill('1000h')
  await page.getByRole('button', { name: 'Save metering settings' }).click()
  await page.locator('section', { hasText: 'Metering' }).getByText('Saved.').waitFor()
  check(true, 'the late-event window is saved')
  await audit('settings')
  await shot('14-settings')

  // Phone width: the navigation folds behind a button.
  l.step = 'phone'
  await page.setViewportSize({ width: 390, height: 844 })
  await l.go(`/customers`)
  await page.locator('tbody tr').first().waitFor()
  check(!(await page.locator('nav#nav').isVisible()), 'at phone width the navigation is folded')
  await page.getByRole('button', { name: 'Menu' }).click()
  check(await page.locator('nav#nav').isVisible(), 'the Menu button opens it')
  await audit('customers-phone')
  await shot('07-customers-phone')
  await l.go(`/customers?search=${encodeURIComponent('Bäckerei')}`)
  await page.locator('tbody tr td a').first().click()
  await page.getByRole('meter').first().waitFor()
  await audit('customer-detail-phone')
  await shot('16-customer-detail-phone')
  await l.go(`/`)
  await page.getByTestId('customers-count').waitFor()
  await page.locator('.chart canvas').waitFor()
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
  check(overflow <= 0, `the overview fits the phone's width (overflow ${overflow} px)`)
  await shot('17-overview-phone')
  await page.setViewportSize({ width: 1280, height: 800 })

  // Keyboard: the skip link is the first stop and moves to the content.
  l.step = 'keyboard'
  await page.goto(`${base}/customers`) // a full load: focus starts at the top
  await page.locator('tbody tr').first().waitFor()
  await page.keyboard.press('Tab')
  check((await page.evaluate(() => document.activeElement?.textContent)) === 'Skip to content', 'Tab first reaches "Skip to content"')
}

// firstLoad opens / in a fresh context with the lane's cookies: time to
// the first figures, and the JavaScript it fetched (gzip, as sent).
export async function firstLoad(h, l) {
  const { base, context } = l
  l.step = 'first-load'
  const fresh = await h.browser.newContext({ viewport: { width: 1280, height: 800 } })
  await fresh.addCookies(await context.cookies())
  const cold = await fresh.newPage()
  let jsBytes = 0
  const jsFiles = []
  cold.on('response', async (r) => {
    if (!r.url().endsWith('.js')) return
    const n = Number((await r.allHeaders())['content-length'] ?? 0)
    jsBytes += n
    jsFiles.push(`${new URL(r.url()).pathname} ${n}`)
  })
  const chartLib = cold.waitForResponse((r) => /\/assets\/uPlot[^/]*\.js$/.test(r.url()))
  await cold.goto(`${base}/`)
  await cold.getByTestId('customers-count').waitFor()
  await chartLib // the chart library comes last
  // The Overview marks the moment its figures are on screen; times are
  // from the navigation's start.
  const t = await cold.evaluate(() => ({
    figures: Math.round(performance.getEntriesByName('abacus:overview-figures')[0]?.startTime ?? -1),
    load: Math.round(performance.getEntriesByType('navigation')[0]?.loadEventEnd ?? -1),
  }))
  console.log(`MEASURE first load of / (signed in, empty cache): ${t.figures} ms to the figures, load event at ${t.load} ms`)
  console.log(`MEASURE JavaScript of the first page: ${jsBytes} bytes gzip in ${jsFiles.length} files: ${jsFiles.join(', ')}`)
  check(t.figures > 0, 'the Overview marks when its figures are on screen')
  check(jsBytes > 0 && jsBytes <= 300 * 1024, `the first page's JavaScript is at most 300 KB gzip (${(jsBytes / 1024).toFixed(1)} KB)`)
  await fresh.close()
}

// mfa turns on TOTP for the owner (after every other lane: they sign in
// with the password), signs in with a code, then signs out.
export async function mfa(l, { email, password }) {
  const { base, page, audit, shot } = l
  // MFA: once the owner has TOTP, sign-in asks for the code.
  l.step = 'mfa'
  await page.getByTestId('user').click()
  await page.getByRole('heading', { name: 'My account' }).waitFor()
  await page.locator('section', { hasText: 'Sessions' }).getByText('this browser').waitFor()
  await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click()
  const secret = (await page.getByTestId('totp-secret').innerText()).trim()
  await page.getByLabel('Code').fill(totp(secret))
  await page.getByRole('button', { name: 'Turn on' }).click()
  await page.getByText('Store these recovery codes now').waitFor()
  check((await page.locator('.codes li').count()) === 10, 'TOTP set up from My account, with 10 recovery codes shown once')
  await audit('account')
  await shot('18-account')
  await page.getByRole('button', { name: 'Sign out', exact: true }).click()
  await page.waitForURL((u) => u.pathname === '/sign-in')
  await page.getByLabel('E-mail').fill(email)
  await page.getByLabel('Password').fill(password)
  l.expected.add('/api/v1/auth/session')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByLabel('Authentication code').waitFor()
  l.expected.delete('/api/v1/auth/session')
  await audit('sign-in-mfa')
  await shot('15-sign-in-mfa')
  // A code is used once per 30 s step and the server accepts one step of
  // clock skew: the next step's code signs in now, with no wait for it.
  await page.getByLabel('Authentication code').fill(totp(secret, Date.now() + 30_000))
  await page.getByRole('button', { name: 'Verify' }).click()
  await page.waitForURL((u) => u.pathname === '/')
  check((await page.getByTestId('user').innerText()).includes(email), 'with MFA, sign-in asks for the code and then signs in')

  l.step = 'sign-out'
  await page.getByRole('button', { name: 'Sign out', exact: true }).click()
  await page.waitForURL((u) => u.pathname === '/sign-in')
  await page.goto(`${base}/customers`)
  await page.waitForURL((u) => u.pathname === '/sign-in')
  check(true, 'after signing out the pages ask to sign in again')
}
