// The browser test's one script: one Chromium for every page of the
// dashboard and the portal, against the one server browser_test.go
// started with the demo data. The printed setup link creates the owner;
// then three lanes (a browser context each, signed in on its own) run side
// by side, as their steps touch different data; MFA comes last, once no
// lane needs to sign in with the password alone.
//
// Environment (set by browser_test.go):
//   ABACUS_URL, ABACUS_EMAIL, ABACUS_PASSWORD  the server and its owner to be
//   ABACUS_SETUP_LINK                          the link its first start printed
//   ABACUS_API_KEY                             its admin key: what the tenant's backend does
//   CHROMIUM, SCREENSHOTS                      the browser; where each page's PNG goes
// The demo data is seeded meanwhile: once the owner exists the script
// prints "need-data" and waits for "seeded METER SUBJECT CUSTOMER DAY" (the
// demo's API-calls meter and a usage spike of it) on stdin. To have usage sent with the CLI it prints
// "send-usage N" and waits for "sent". Exits non-zero when any check
// failed, printing them all.
import { createInterface } from 'node:readline'
import { apiCaller, check, launch, must } from './harness.mjs'
import { firstLoad, frame, mfa, setupOwner } from './frame.mjs'
import { catalogUsageBilling, endUsersWebhooksNotifications, phone, portal } from './pages.mjs'
import { paymentsAndRisk } from './payments_risk.mjs'
import { morePages } from './more_pages.mjs'

const env = {
  email: must('ABACUS_EMAIL'),
  password: must('ABACUS_PASSWORD'),
  setupLink: must('ABACUS_SETUP_LINK'),
  apiKey: must('ABACUS_API_KEY'),
}
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
env.sendUsage = async (n) => {
  console.log(`send-usage ${n}`)
  return (await lines.next()).value === 'sent'
}

const h = await launch()
try {
  const call = apiCaller(h.base, env.apiKey)
  env.call = call
  const owner = await h.lane('frame')
  await h.run(owner, (l) => setupOwner(l, env))
  if (h.failures.length) throw new Error('the owner could not be created: no lane can sign in')
  console.log('need-data')
  const seeded = (await lines.next()).value ?? ''
  if (!seeded.startsWith('seeded ')) throw new Error(`the demo data was not seeded (${seeded})`)
  const [meter, subject, customer, day] = seeded.slice('seeded '.length).split(' ')
  env.meter = meter
  env.spike = { subject, customer, day } // a usage spike of meter recorded yesterday

  // Open invoices of three customers: the portal's (with a quota), another
  // the portal must not show, and a third that the payments lane pays.
  const open = (await call('GET', '/api/v1/invoices?status=open&limit=100')).data
  let mine
  for (const inv of open) {
    const ents = (await call('GET', `/api/v1/customers/${inv.customer_id}/entitlements`)).data
    if (ents.some((e) => e.kind === 'metered' && e.limit !== null)) { mine = inv; break }
  }
  const theirs = open.find((i) => mine && i.customer_id !== mine.customer_id)
  const paid = open.find((i) => theirs && i.customer_id !== mine.customer_id && i.customer_id !== theirs.customer_id)
  check(!!mine && !!theirs && !!paid, 'the demo has open invoices of three customers, one of them with a quota')

  const pages = await h.lane('pages')
  const payments = await h.lane('payments-risk')
  await Promise.all([pages.signIn(env.email, env.password), payments.signIn(env.email, env.password)])
  await Promise.all([
    h.run(owner, async (l) => {
      await frame(l, env)
      await l.page.setViewportSize({ width: 390, height: 844 })
      await phone(l, env)
      await l.page.setViewportSize({ width: 1280, height: 800 })
      await firstLoad(h, l)
    }),
    h.run(pages, async (l) => {
      await catalogUsageBilling(l, env)
      await portal(l, { call, mine, theirs })
      await endUsersWebhooksNotifications(l, { mine })
    }),
    h.run(payments, async (l) => {
      await paymentsAndRisk(l, call, paid)
      await morePages(l, call, env)
    }),
  ])
  await h.run(owner, (l) => mfa(l, env))
  await h.finish()
} catch (e) {
  await h.finish(e)
}
