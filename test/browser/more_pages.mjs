// The pages added beside payments and risk (session 7): overview figures
// and the inbox bell, messaging, received documents, an end user's
// sessions, template and trigger editing, analytics. One visit each with
// axe and a screenshot; the data comes through the API with the admin key.
import { check } from './harness.mjs'

export async function morePages(l, call, { meter, spike }) {
  const { base, page, expected, audit, shot } = l
  const started = Date.now()

  l.step = 'overview-additions'
  await l.go(`/`)
  await page.getByTestId('reviews-waiting').waitFor()
  check(/^\d+/.test(await page.getByTestId('failed-payments').innerText()) && /^\d+/.test(await page.getByTestId('reviews-waiting').innerText()),
    `the overview shows failed payments (${await page.getByTestId('failed-payments').innerText()}) and risk reviews waiting (${await page.getByTestId('reviews-waiting').innerText()})`)
  await page.getByTestId('inbox-bell').click()
  await page.locator('#inbox-panel').waitFor()
  await page.locator('#inbox-panel :is(ul, .muted, [role=alert])').first().waitFor()
  check(true, 'the inbox bell opens the staff member\'s in-app inbox')
  await audit('overview-inbox')
  await shot('86-overview-inbox')

  l.step = 'messaging'
  const tag = Date.now().toString(36)
  const conv = await call('POST', '/api/v1/conversations', { kind: 'group', member_ids: [`ada-${tag}`, `bob-${tag}`], title: `Support ${tag}` })
  await call('POST', `/api/v1/conversations/${conv.id}/messages`, { sender_id: `bob-${tag}`, client_id: 'c1', text: 'something rude' })
  await l.go(`/messaging?user=ada-${tag}`)
  await page.getByTestId('no-connections').waitFor()
  await page.getByRole('link', { name: `Support ${tag}` }).waitFor()
  check(true, 'messaging shows a user\'s live connections (none) and the conversations')
  await audit('messaging')
  await shot('87-messaging')
  await page.getByRole('link', { name: `Support ${tag}` }).click()
  await page.getByText('something rude').waitFor()
  page.once('dialog', (d) => d.accept())
  await page.getByRole('button', { name: 'Remove message #1' }).click()
  await page.getByText('Message #1 removed.').waitFor()
  check(!(await page.getByText('something rude').count()), 'staff removes a message: it becomes a tombstone')
  await audit('conversation')
  await shot('88-conversation-moderated')

  l.step = 'documents'
  await l.go(`/documents`)
  await page.locator('main .empty, main table').first().waitFor()
  await page.setInputFiles('#doc-file', '../../internal/document/testdata/broken-invoice.xml')
  await page.getByRole('button', { name: 'Receive document' }).click()
  await page.waitForURL((u) => /^\/documents\/idoc_/.test(u.pathname))
  await page.getByTestId('violations').waitFor()
  check((await page.getByTestId('document-status').innerText()) === 'invalid' && (await page.getByTestId('violations').innerText()).includes('BR-02'),
    'a received document shows its validation report (BR-02 broken)')
  const dl = await page.request.get(`${base}/api/v1/documents/inbound/${new URL(page.url()).pathname.split('/').pop()}?format=json`)
  check(dl.status() === 200 && (await page.getByRole('link', { name: 'Original, as received' }).count()) === 1, 'and offers its downloads (JSON rendition answered 200)')
  await audit('document')
  await shot('89-document-report')

  l.step = 'end-user-sessions'
  const eu = await call('POST', '/api/v1/end-users', { email: `eu-${tag}@example.com`, name: 'Session Test', password: 'correct horse battery staple 7' })
  await l.go(`/end-users?search=eu-${tag}&user=${eu.id}`)
  await page.getByTestId('no-sessions').waitFor()
  check(true, 'an end user\'s sessions and devices are shown on the end-user page')
  await audit('end-user-sessions')

  l.step = 'template-trigger-editing'
  await l.go(`/notifications`)
  await page.getByRole('button', { name: 'Edit invoice.finalized (en)', exact: true }).click()
  await page.getByLabel('Subject').waitFor()
  await page.waitForFunction(() => document.querySelector('input[name=subject]')?.value !== '')
  await page.getByLabel('Text body (Go text/template)').fill('Invoice {{.invoice.nummer}}')
  expected.add('/api/v1/notifications/templates/')
  await page.getByRole('button', { name: 'Save template' }).click()
  const textError = page.locator('.field.invalid').filter({ has: page.getByLabel('Text body (Go text/template)') }).locator('.field-error')
  await textError.waitFor()
  check((await textError.innerText()).includes('nummer'), `a template error is shown under its part: "${(await textError.innerText()).trim()}"`)
  expected.delete('/api/v1/notifications/templates/')
  await page.getByLabel('Text body (Go text/template)').fill('Invoice {{.invoice.number}} is ready.')
  await page.getByRole('button', { name: 'Preview unsaved' }).click()
  await page.getByTestId('template-edit-preview').waitFor()
  check((await page.getByTestId('template-edit-preview').innerText()).includes(' is ready.'), 'the unsaved text is previewed with the sample data')
  // A tenant's own HTML (a whole document; the layout's partials are available too).
  await page.getByLabel('HTML body (Go html/template)').fill('<p>Invoice {{.invoice.number}} is ready.</p>')
  await page.getByRole('button', { name: 'Save template' }).click()
  await page.getByText(/^Saved as a new version/).waitFor()
  await page.getByRole('button', { name: 'Edit invoice.finalized', exact: true }).click()
  await page.getByLabel('Staff roles (comma-separated)').fill('owner')
  await page.getByRole('button', { name: 'Save trigger' }).click()
  await page.getByText('Trigger invoice.finalized saved.').waitFor()
  check(true, 'a template is edited, previewed unsaved and saved; a trigger also notifies staff')
  await audit('notifications-editing')
  await shot('97-notifications-editing')

  l.step = 'analytics'
  expected.add('/api/v1/analytics/')
  await l.go(`/analytics?series=mrr&interval=day`)
  await page.locator('[data-testid=analytics-unavailable], [data-testid=analytics-table], main .empty').first().waitFor()
  const landed = !(await page.getByTestId('analytics-unavailable').count())
  check(true, landed ? 'the analytics page draws the MRR series' : 'the analytics page says the module is not on this server yet (404)')
  await audit('analytics')
  await shot('98-analytics')
  expected.delete('/api/v1/analytics/')

  // The usage series: a point per day, the spike recorded yesterday
  // marked on its day and listed with its customer.
  l.step = 'analytics-usage'
  await l.go(`/analytics?series=usage&interval=day&meter=${meter}`)
  const usageMark = page.getByTestId('analytics-usage').locator('tr', { hasText: spike.day }).getByTestId('spike-mark')
  await usageMark.waitFor()
  check((await usageMark.innerText()).includes('×25'), `the usage series marks the spike on its day (${await usageMark.innerText()})`)
  check((await page.getByTestId('usage-spikes').getByRole('link').getAttribute('href')) === `/customers/${spike.customer}`, 'and lists it with its customer linked')
  await page.waitForFunction(() => Number(document.querySelector('.chart [data-spikes]')?.getAttribute('data-spikes')) >= 1, null, { timeout: 30_000 })
  check(true, 'the usage chart shades the spike\'s day')
  await audit('analytics-usage')
  await shot('99-analytics-usage')
  console.log(`MEASURE session-7 pages beside payments and risk: ${((Date.now() - started) / 1000).toFixed(1)} s`)
}
