// The payments and risk pages, driven once each with axe and a screenshot
// (run.mjs calls it on its signed-in lane). What the tenant's
// backend would do — a bank transfer recorded, risk events sent — goes
// through the API with the admin key (call); the rest is clicked.
import { check } from './harness.mjs'

export async function paymentsAndRisk(l, call, invoice) {
  const { base, page, expected, audit, shot } = l
  const started = Date.now()

  l.step = 'payments'
  const paid = await call('POST', '/api/v1/payments', { invoice_id: invoice.id, amount: '1.00', reference: `browser-${Date.now()}` })
  await l.go(`/payments?provider=manual`)
  await page.getByRole('link', { name: paid.id }).waitFor()
  check(new URL(page.url()).searchParams.get('provider') === 'manual' && (await page.getByLabel('Provider', { exact: true }).inputValue()) === 'manual',
    'the payments list keeps its provider filter in the URL, shows it in its select and lists the manual payment')
  await audit('payments')
  await shot('80-payments')
  await page.getByRole('link', { name: paid.id }).click()
  await page.waitForURL((u) => u.pathname === `/payments/${paid.id}`)
  expected.add('/refund')
  await page.getByLabel(/^Amount/).fill('5.00')
  await page.getByRole('button', { name: 'Refund', exact: true }).click()
  const refundError = page.locator('.field.invalid').filter({ has: page.getByLabel(/^Amount/) }).locator('.field-error')
  await refundError.waitFor()
  check(true, `refunding more than was paid shows the API's message next to the amount: "${await refundError.innerText()}"`)
  expected.delete('/refund')
  await page.getByLabel(/^Amount/).fill('0.40')
  await page.getByRole('button', { name: 'Refund', exact: true }).click()
  await page.getByText('Refund recorded.').waitFor()
  check((await page.getByTestId('payment-refunded').innerText()).startsWith('0.4'), `the refund is recorded (${await page.getByTestId('payment-refunded').innerText()})`)
  await audit('payment')
  await shot('81-payment-refund')

  await l.go(`/payments/receivables`)
  await page.getByTestId('aging').waitFor()
  check((await page.getByTestId('aging').locator('tbody tr').count()) > 0, 'the receivables aging lists what open invoices owe per currency')
  await audit('receivables')
  await shot('82-receivables')

  await l.go(`/payments/dunning?status=active`)
  await page.getByLabel('Charge attempts at most').waitFor()
  await page.waitForFunction(() => document.querySelector('input[name=max_attempts]')?.value !== '')
  expected.add('/api/v1/settings/dunning')
  await page.getByLabel('Charge attempts at most').fill('0')
  await page.getByRole('button', { name: 'Save dunning settings' }).click()
  const attemptsError = page.locator('.field.invalid').filter({ has: page.getByLabel('Charge attempts at most') }).locator('.field-error')
  await attemptsError.waitFor()
  check(true, `a bad dunning setting is explained under its field: "${await attemptsError.innerText()}"`)
  expected.delete('/api/v1/settings/dunning')
  await page.getByLabel('Charge attempts at most').fill('4')
  await page.getByRole('button', { name: 'Save dunning settings' }).click()
  await page.getByText(/^Saved\./).waitFor()
  await audit('dunning')
  await shot('83-dunning')

  await l.go(`/payments/settings`)
  await page.getByTestId('stripe-state').waitFor()
  const secret = 'sk_test_browser0123456789abcd'
  await page.getByLabel(/^Secret key/).fill(secret)
  await page.getByLabel(/^Webhook signing secret/).fill('whsec_browser_test')
  await page.getByRole('button', { name: 'Save Stripe credentials' }).click()
  await page.getByText(/^Saved\. The secrets/).waitFor()
  const shown = await page.locator('main').innerText()
  check(shown.includes('…abcd') && !shown.includes(secret) && (await page.getByLabel(/^Secret key/).inputValue()) === '',
    'Stripe is configured: the page shows the key\'s last four characters and never the secret again')
  await audit('stripe')
  await shot('84-stripe')
  // Disputes: the payments module's list, its status filter in the URL.
  await l.go(`/payments/disputes?status=lost`)
  await page.locator('[data-testid=disputes], [data-testid=disputes-empty], main [role=alert]').first().waitFor()
  const disputesProblem = await page.locator('main [role=alert]').count()
  check(!disputesProblem && new URL(page.url()).searchParams.get('status') === 'lost', disputesProblem
    ? `the disputes page shows a problem: "${(await page.locator('main [role=alert]').first().innerText()).split('\n')[0]}"`
    : 'the disputes page lists the lost disputes (none), its status filter in the URL')
  // The ids are applied together (LedgerFilters, shared with the payments list), keeping the status.
  check((await page.getByLabel('Status', { exact: true }).inputValue()) === 'lost', 'the disputes status select shows the filter of the URL')
  await page.getByLabel('Customer id', { exact: true }).fill(' cus_nobody ')
  await page.getByRole('button', { name: 'Apply' }).click()
  await page.waitForURL((u) => u.searchParams.get('customer_id') === 'cus_nobody' && u.searchParams.get('status') === 'lost')
  check(true, 'the disputes customer filter is applied, trimmed, beside the status')
  await audit('disputes')
  await shot('84b-disputes')

  l.step = 'risk'
  // A review rule, written in the page: a bad variable first.
  await l.go(`/risk/rules`)
  await page.locator('main .empty, main table').first().waitFor()
  await page.getByRole('button', { name: 'New rule' }).click()
  await page.getByLabel('Rule name').fill('Large orders')
  expected.add('/api/v1/risk/rules')
  await page.getByLabel('Logic (JsonLogic)').fill('{">": [{"var": "counters.nope"}, 1]}')
  await page.getByRole('button', { name: 'Create rule' }).click()
  const logicError = page.locator('.field.invalid').filter({ has: page.getByLabel('Logic (JsonLogic)') }).locator('.field-error')
  await logicError.waitFor()
  check((await logicError.innerText()).includes('counters.nope'), `an unknown variable is named under the logic: "${(await logicError.innerText()).trim()}"`)
  await audit('risk-rules')
  await shot('90-risk-rule-error')
  expected.delete('/api/v1/risk/rules')
  await page.getByLabel('Logic (JsonLogic)').fill('{">=": [{"var": "event.amount"}, 500]}')
  await page.getByRole('button', { name: 'Create rule' }).click()
  await page.waitForURL((u) => /^\/risk\/rules\/rul_/.test(u.pathname))
  await page.getByRole('button', { name: 'Activate v1' }).click()
  await page.getByTestId('rule-v1-status').getByText('active').waitFor()
  check(true, 'the rule is created as a draft and activated from its page')
  await page.getByRole('button', { name: 'Run backtest' }).click()
  await page.getByTestId('backtest-result').waitFor()
  check(/of \d+ events/.test(await page.getByTestId('backtest-result').innerText()), `a backtest answers: "${(await page.getByTestId('backtest-result').innerText()).split('\n')[0]}"`)
  await audit('risk-rule')
  await shot('91-risk-rule')

  // Two customers share a device; the large order goes to review.
  const tag = Date.now().toString(36)
  const a = `browser-${tag}-a`
  const b = `browser-${tag}-b`
  await call('POST', '/api/v1/risk/events', [
    { type: 'order', customer_id: a, device_id: `dev-${tag}`, ip: '203.0.113.9', amount: '20.00', currency: 'EUR' },
    { type: 'order', customer_id: b, device_id: `dev-${tag}`, email: `${tag}@example.com`, amount: '900.00', currency: 'EUR' },
  ])
  await l.go(`/risk/cases?status=open&customer_id=${b}`)
  await page.locator('tbody tr td a').first().click()
  await page.waitForURL((u) => /^\/risk\/cases\//.test(u.pathname))
  await page.getByText('Large orders').first().waitFor()
  check(true, 'the review decision opened a case in the queue, explained by the rule that matched')
  await page.getByRole('button', { name: 'Assign', exact: true }).click()
  await page.getByText('Assigned.').waitFor()
  await page.getByLabel('Comment', { exact: true }).fill('Same device as another account.')
  await page.getByRole('button', { name: 'Add comment' }).click()
  await page.getByText('Same device as another account.').waitFor()
  await audit('risk-case')
  await shot('92-risk-case')
  await page.getByLabel('The customer is').selectOption('fraud')
  await page.getByRole('button', { name: 'Resolve case' }).click()
  await page.getByTestId('case-status').getByText('resolved').waitFor()
  check(true, 'the case is assigned, commented and resolved with the label fraud')

  await l.go(`/risk/graph?customer=${a}&hops=2`)
  await page.getByTestId('risk-graph').waitFor()
  const features = await page.getByTestId('graph-features').innerText()
  check(/1 linked accounts · 1 labelled fraud/.test(features), `the graph of the other customer shows the link to the one labelled fraud: "${features}"`)
  check((await page.locator('[data-testid=risk-graph] circle').count()) >= 3, 'and draws its neighbourhood')
  await audit('risk-graph')
  await shot('93-risk-graph')

  for (const [path, name] of [['/risk/decisions?decision=review', '94-risk-decisions'], ['/risk/counters', '95-risk-counters'], ['/risk/lists', '96-risk-lists']]) {
    await l.go(path)
    await page.locator('main .empty, main table, main ul.decisions').first().waitFor()
    check(!(await page.getByRole('alert').count()), `${path} loads`)
    await audit(name)
    await shot(name)
  }
  // A customer's risk decisions on its page (the decisions list's customer
  // filter, by the id events name the customer by).
  {
    const cust = await call('GET', `/api/v1/customers/${invoice.customer_id}`)
    const riskId = cust.external_id || cust.id
    await call('POST', '/api/v1/risk/events', [{ type: 'order', customer_id: riskId, amount: '12.00', currency: 'EUR' }])
    await l.go(`/customers/${cust.id}`)
    await page.getByTestId('decisions-details').locator('summary').click()
    const shown = page.locator('[data-testid=customer-decisions], [data-testid=no-decisions], [data-testid=decisions-details] [role=alert]').first()
    await shown.waitFor()
    const rows = await page.getByTestId('customer-decisions').locator('li').count()
    check(rows > 0, rows > 0
      ? `the customer's page lists its risk decisions (${rows})`
      : `the customer's risk decisions are missing: "${(await shown.innerText()).split('\n')[0]}"`)
    await audit('customer-decisions')
    await shot('97b-customer-risk-decisions')
  }

  console.log(`MEASURE payments and risk pages: ${((Date.now() - started) / 1000).toFixed(1)} s`)
}
