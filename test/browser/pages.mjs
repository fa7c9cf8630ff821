// The catalog, usage, billing and portal pages and the pages of the
// end-user, webhooks and notifications modules, driven in Chromium with
// axe-core on each. run.mjs calls each function on a lane (harness.mjs).
import { check } from './harness.mjs'

// catalogUsageBilling: a plan with a graduated price and its preview,
// usage sent with the CLI reaching the chart (sendUsage asks the Go test
// to run `abacus events send`), a finalized invoice and its PDF.
export async function catalogUsageBilling(l, { meter, sendUsage, spike }) {
  const { base, page, audit, shot } = l
  l.step = 'catalog'
  await l.go(`/catalog`)
  await page.locator('tbody tr').first().waitFor()
  check((await page.locator('tbody tr').count()) > 1, 'the catalog lists the demo plans and features')
  await audit('catalog')
  await shot('20-catalog')
  await page.getByRole('button', { name: 'New plan' }).click()
  l.expected.add('/api/v1/plans')
  await page.getByLabel('Key').fill('Usage Pro!')
  await page.getByLabel('Name', { exact: true }).fill('Usage Pro')
  await page.getByRole('button', { name: 'Create plan' }).click()
  const keyError = page.locator('.field.invalid').filter({ has: page.getByLabel('Key') }).locator('.field-error')
  await keyError.waitFor()
  check((await keyError.innerText()).includes('slug'), `a bad key shows the API's message next to the Key field: "${await keyError.innerText()}"`)
  await shot('20b-plan-key-error')
  l.expected.delete('/api/v1/plans')
  await page.getByLabel('Key').fill('usage-pro')
  await page.getByLabel('Name', { exact: true }).fill('Usage Pro')
  await page.getByRole('button', { name: 'Create plan' }).click()
  await page.waitForURL((u) => u.pathname.startsWith('/catalog/plans/'))
  await page.getByRole('button', { name: 'Create first version' }).click()
  await page.getByRole('button', { name: 'Add usage price' }).waitFor()
  await page.getByRole('button', { name: 'Add usage price' }).click()
  await page.getByLabel('Pricing model').selectOption('graduated')
  await page.getByLabel('Tier 1 up to').fill('1000')
  await page.getByLabel('Tier 1 unit price').fill('0.01')
  await page.getByLabel('Tier 2 unit price').fill('0.005')
  await page.getByLabel('What would this quantity cost?').fill('12345')
  // 1,000 × 0.01 + 11,345 × 0.005 = 66.725 → 66.73 EUR (half up).
  const preview = page.getByTestId('ch-1-preview')
  await preview.getByText('66.73 EUR', { exact: true }).waitFor()
  check((await preview.locator('tbody tr').count()) === 2, 'the preview says 12345 units cost 66.73 EUR, with one row per tier')
  await audit('plan-editor')
  await shot('21-plan-graduated-preview')

  l.expected.add('/api/v1/plans/price-preview')
  await page.getByLabel('Tier 1 up to').fill('-5')
  const tierError = page.locator('.field.invalid').filter({ has: page.getByLabel('Tier 1 up to') }).locator('.field-error')
  await tierError.waitFor()
  check((await tierError.innerText()).includes('greater than 0'), `a bad tier shows the API's message next to it: "${await tierError.innerText()}"`)
  await shot('22-plan-tier-error')
  await page.getByLabel('Tier 1 up to').fill('1000')
  await preview.getByText('66.73 EUR', { exact: true }).waitFor()
  l.expected.delete('/api/v1/plans/price-preview')

  await page.getByRole('button', { name: 'Save and publish' }).click()
  await page.getByText('Version published.').waitFor()
  check(await page.locator('.versions .st-published').isVisible(), 'the version is published and the editor becomes read-only')
  await shot('23-plan-published')

  // Usage: the explorer, then usage sent with the CLI reaches the chart.
  l.step = 'usage'
  await l.go(`/usage?meter=${meter}&range=1h&window=MINUTE`)
  await page.locator('.chart canvas, .empty').first().waitFor()
  // The explorer's "Total N" (none while the meter has no usage in range).
  const totalOf = () => page.evaluate(() => Number(document.body.innerText.match(/Total ([\d,.]+)/)?.[1].replace(/,/g, '') ?? 0))
  const before = await totalOf()
  await audit('usage')
  await shot('30-usage')
  check(await sendUsage(25), 'abacus events send sent 25 events')
  const sentAt = Date.now()
  await page.waitForFunction(
    (want) => { const m = document.body.innerText.match(/Total ([\d,.]+)/); return m && Number(m[1].replace(/,/g, '')) >= want },
    before + 25, { timeout: 60_000 },
  )
  await page.locator('.chart canvas').first().waitFor()
  check(true, `the chart's total rose from ${before} to ${await totalOf()} ${((Date.now() - sentAt) / 1000).toFixed(1)} s after the CLI returned (live refresh every 5 s)`)
  check((await page.getByTestId('recent-events').getByText('browser-test').count()) > 0, 'the recent events list shows them')
  await shot('31-usage-after-cli')
  await page.getByLabel('Group by').selectOption('subject')
  await page.waitForURL((u) => u.searchParams.get('group') === 'subject')
  await page.getByTestId('usage-table').getByText('browser-test').first().waitFor()
  check(true, 'group-by subject is in the URL and the table has a column per subject')
  await shot('32-usage-grouped')

  // Usage spikes: the one recorded yesterday (browser_test.go's seedSpike)
  // is shaded on the chart, marked on its day's row and listed with its
  // customer (linked), meter, usage, baseline and how far above it.
  l.step = 'usage-spikes'
  await l.go(`/usage?meter=${meter}&range=7d&window=DAY`)
  const spikeRow = page.getByTestId('usage-spikes').locator('tbody tr', { hasText: spike.subject })
  await spikeRow.waitFor()
  const spikeLink = spikeRow.getByRole('link')
  check((await spikeLink.getAttribute('href')) === `/customers/${spike.customer}`, `the spike names its customer, linked to its page (${await spikeLink.innerText()})`)
  const cells = (await spikeRow.locator('td').allInnerTexts()).map((t) => t.trim())
  const want = [spike.day, 'Spike Robotics GmbH', spike.subject, meter, '250', '10', '×25']
  check(cells.join('|') === want.join('|'), `the spike shows its day, customer, subject, meter, usage, baseline and how far above it (${cells.join(' | ')})`)
  await page.waitForFunction(() => Number(document.querySelector('.chart [data-spikes]')?.getAttribute('data-spikes')) >= 1, null, { timeout: 30_000 })
  check(true, `the chart shades the spike's day (${await page.locator('.chart [role=img]').getAttribute('aria-label')})`)
  const spikeMark = page.getByTestId('usage-table').getByTestId('spike-mark')
  await spikeMark.first().waitFor()
  check((await spikeMark.count()) === 1 && (await spikeMark.innerText()).includes('×25'), `the table marks the spike's day (${await spikeMark.first().innerText()})`)
  await audit('usage-spikes')
  await shot('33-usage-spikes')

  // Billing: a finalized invoice and its PDF in the page.
  l.step = 'billing'
  await l.go(`/billing/invoices?status=open`)
  await page.locator('tbody tr').first().waitFor()
  check(new URL(page.url()).searchParams.get('status') === 'open', 'the status filter is in the URL')
  await audit('invoices')
  await shot('40-invoices')
  const pdf = page.waitForResponse((r) => r.url().includes('/document?format=pdf'))
  await page.locator('tbody tr td a').first().click()
  await page.waitForURL((u) => u.pathname.startsWith('/billing/invoices/inv_'))
  const res = await pdf
  check(res.status() === 200 && res.headers()['content-type'].startsWith('application/pdf'), 'the invoice page loads its PDF into the page')
  check(await page.getByTestId('invoice-pdf').isVisible(), 'the PDF preview frame is shown')
  await page.getByText('Amount due').waitFor()
  await audit('invoice')
  await shot('41-invoice-pdf')
  await page.getByRole('button', { name: 'Credit note…' }).click()
  l.expected.add('/api/v1/credit-notes')
  await page.getByLabel(/Net amount/).fill('-1')
  await page.getByRole('button', { name: 'Create credit note' }).click()
  await page.locator('#credit-form [role=alert], #credit-form .field-error').first().waitFor()
  check(true, 'a negative credit note shows the problem')
  l.expected.delete('/api/v1/credit-notes')
  await shot('42-invoice-credit-error')

  for (const [path, name] of [['credit-notes', '43-credit-notes'], ['coupons', '44-coupons'], ['tax-rates', '45-tax-rates'], ['settings', '46-billing-settings']]) {
    await l.go(`/billing/${path}`)
    await page.locator('table, form.card, .empty').first().waitFor()
    check(!(await page.getByRole('alert').count()), `/billing/${path} loads`)
    await audit(path)
    await shot(name)
  }
}

// portal opens the customer portal from a portal link the tenant's backend
// made through the API: the customer's finalized invoice (mine) and usage
// against its quota, and nothing of another customer's (theirs).
export async function portal(l, { call, mine, theirs }) {
  const { base, page, audit, shot } = l
  l.step = 'portal'
  await call('PUT', '/api/v1/settings/portal', { branding: { name: 'Demo SaaS', primary_color: '#1d4ed8', accent_color: '#0f172a' },
    allow_plan_change: false, plans: [], allow_cancel: true })
  const link = await call('POST', `/api/v1/customers/${mine.customer_id}/portal-links`, { ttl_seconds: 600 })
  await page.goto(link.url)
  await page.waitForURL((u) => u.pathname === '/portal')
  await page.getByTestId('portal-invoice').first().waitFor()
  const portalText = await page.locator('main').innerText()
  check(portalText.includes(mine.number), `the portal lists the customer's finalized invoice ${mine.number}`)
  check(!portalText.includes(theirs.number), `and not the other customer's ${theirs.number}`)
  const bar = page.getByTestId('portal-usage').locator('[role=meter]').first()
  await bar.waitFor()
  check(/ of /.test(await bar.getAttribute('aria-valuetext')), `usage against the quota: ${await bar.getAttribute('aria-valuetext')}`)
  check(await page.getByRole('button', { name: 'Cancel at period end' }).count() > 0, 'cancelling at the period end is offered, as the tenant allows')
  check((await page.getByTestId('portal-brand').innerText()) === 'Demo SaaS', "the tenant's branding is shown")
  await audit('portal')
  await shot('60-portal')
  await page.getByRole('link', { name: mine.number, exact: true }).click()
  await page.waitForURL((u) => u.pathname === `/portal/invoices/${mine.id}`)
  await page.getByTestId('portal-invoice-total').waitFor()
  check((await page.getByRole('link', { name: 'Download UBL (XML e-invoice)' }).count()) === 1, 'the invoice offers its PDF and UBL')
  await audit('portal-invoice')
  await shot('61-portal-invoice')
  // "Pay this invoice": the payments module's hosted page, for this invoice.
  await page.getByRole('button', { name: new RegExp(`^Pay .* of invoice ${mine.number}$`) }).click()
  await page.waitForURL((u) => u.pathname.startsWith('/pay/'))
  await page.getByRole('heading', { name: `Invoice ${mine.number}` }).waitFor()
  check(true, `the portal's Pay button opens the hosted pay page of ${mine.number}`)
  await shot('66-portal-pay-page')
  // Another customer's invoice, asked by its id: not found, like a made-up id.
  l.expected.add(`/api/v1/portal/invoices/${theirs.id}`)
  await page.goto(`${base}/portal/invoices/${theirs.id}`)
  await page.getByRole('alert').waitFor()
  const otherText = await page.getByRole('alert').innerText()
  check(otherText.includes('does not exist'), `another customer's invoice does not exist in this portal: "${otherText.split('\n')[0]}"`)
  await shot('62-portal-other-customer')
  // A bad tax id or country shows the API's message next to its field.
  await page.goto(`${base}/portal`)
  await page.getByLabel('Country (ISO code, e.g. DE)').fill('XX')
  l.expected.add('/api/v1/portal/customer')
  await page.getByRole('button', { name: 'Save billing details' }).click()
  const countryError = page.locator('.field.invalid').filter({ has: page.getByLabel('Country (ISO code, e.g. DE)') }).locator('.field-error')
  await countryError.waitFor()
  check(true, `a bad country shows the API's message next to it: "${await countryError.innerText()}"`)
  await audit('portal-details-error')
  await shot('63-portal-details-error')
  // At phone width.
  await page.setViewportSize({ width: 390, height: 844 })
  await page.locator('tbody tr').first().waitFor()
  await audit('65-portal-phone')
  await shot('65-portal-phone')
  await page.setViewportSize({ width: 1280, height: 800 })
  // A link that is revoked no longer opens.
  const revoked = await call('POST', `/api/v1/customers/${theirs.customer_id}/portal-links`, {})
  await call('DELETE', `/api/v1/customers/${theirs.customer_id}/portal-links/${revoked.id}`)
  l.expected.add('/api/v1/portal/session')
  await page.goto(revoked.url)
  await page.getByRole('alert').waitFor()
  check(/not valid|revoked/.test(await page.getByRole('alert').innerText()), 'a revoked link does not open the portal')
  await shot('64-portal-revoked-link')
}

// endUsersWebhooksNotifications: the pages of the end-user, webhooks and
// notifications modules, the portal's settings and a customer's portal link.
export async function endUsersWebhooksNotifications(l, { mine }) {
  const { base, page, audit, shot } = l
  l.step = 'session-6 pages'
  await l.go(`/end-users?status=active`)
  await page.locator('table, .empty').first().waitFor()
  check(new URL(page.url()).searchParams.get('status') === 'active', 'the end users page keeps its status filter in the URL')
  await audit('end-users')
  await shot('70-end-users')
  await l.go(`/webhooks`)
  await page.locator('table, .empty').first().waitFor()
  l.expected.add('/api/v1/webhook-endpoints')
  await page.getByLabel('URL', { exact: true }).fill('http://127.0.0.1:9/hook')
  await page.getByRole('button', { name: 'Create endpoint' }).click()
  const urlError = page.locator('.field.invalid').filter({ has: page.getByLabel('URL', { exact: true }) }).locator('.field-error')
  await urlError.waitFor()
  check(true, `a loopback webhook URL shows the API's message next to the URL field: "${await urlError.innerText()}"`)
  l.expected.delete('/api/v1/webhook-endpoints')
  await audit('webhooks')
  await shot('71-webhooks')
  for (const [path, name] of [['/organizations', '74-organizations'], ['/apps', '75-apps']]) {
    await l.go(path)
    await page.locator('table, .empty').first().waitFor()
    check(!(await page.getByRole('alert').count()), `${path} loads`)
    await audit(name)
    await shot(name)
  }
  await page.getByLabel('App name').fill('Portal demo app')
  await page.getByLabel(/^Type/).selectOption('confidential')
  await page.getByLabel(/Redirect URIs/).fill('https://app.example.com/cb')
  await page.getByRole('button', { name: 'Register app' }).click()
  await page.getByTestId('app-created').waitFor()
  check((await page.getByTestId('app-created').innerText()).includes('client secret'), "a confidential app's secret is shown once when it is registered")
  await shot('76-app-created')
  await l.go(`/notifications`)
  await page.locator('tbody tr').first().waitFor()
  await page.getByRole('button', { name: /^Preview invoice\.finalized/ }).first().click()
  await page.getByTestId('template-preview').waitFor()
  check((await page.getByTestId('template-preview').innerText()).includes('Subject:'), 'a template is previewed with its sample data')
  await audit('notifications')
  await shot('77-notifications')
  await l.go(`/settings/portal`)
  await page.getByLabel('Name shown in the portal').waitFor()
  check((await page.getByLabel('Name shown in the portal').inputValue()) === 'Demo SaaS', 'the portal settings page shows the branding set through the API')
  await audit('portal-settings')
  await shot('72-portal-settings')
  await l.go(`/customers/${mine.customer_id}`)
  await page.getByRole('button', { name: 'Create portal link' }).click()
  await page.getByTestId('portal-link-url').waitFor()
  check((await page.getByTestId('portal-link-url').innerText()).includes('/portal/open#token=apl_'), "a customer's page creates a portal link and shows its URL once")
  await audit('customer-portal-link')
  await shot('73-customer-portal-link')

}

// phone opens the catalog, usage, billing and payments pages at phone width.
export async function phone(l, { meter }) {
  const { page, audit, shot } = l
  l.step = 'phone'
  await page.evaluate(() => document.activeElement?.blur()) // the keyboard step left the skip link focused (shown)
  for (const [path, name] of [['/catalog', '50-catalog-phone'], [`/usage?meter=${meter}&range=1h`, '51-usage-phone'], ['/billing/invoices', '52-invoices-phone'],
    ['/payments', '85-payments-phone']]) {
    await l.go(path)
    await page.locator('tbody tr').first().waitFor()
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
    check(overflow <= 0, `${path} fits the phone's width (overflow ${overflow} px)`)
    await audit(name)
    await shot(name)
  }
}
