// Routes of the dashboard. Every page is loaded lazily, so the first load
// carries only the frame and the page it opens. Pages that need no session
// set meta.public.
import { createRouter, createWebHistory, type RouteLocationNormalized, type RouteRecordRaw } from 'vue-router'
import { session } from './session'

const routes: RouteRecordRaw[] = [
  { path: '/', component: () => import('./pages/Overview.vue'), meta: { title: 'Overview' } },
  { path: '/sign-in', component: () => import('./pages/SignIn.vue'), meta: { public: true, title: 'Sign in' } },
  { path: '/setup', component: () => import('./pages/Setup.vue'), meta: { public: true, title: 'Create the owner account' } },
  { path: '/customers', component: () => import('./pages/Customers.vue'), meta: { title: 'Customers' } },
  { path: '/customers/new', component: () => import('./pages/NewCustomer.vue'), meta: { title: 'New customer' } },
  { path: '/customers/:id', component: () => import('./pages/CustomerDetail.vue'), meta: { title: 'Customer' } },
  { path: '/end-users', component: () => import('./pages/EndUsers.vue'), meta: { title: 'End users' } },
  { path: '/organizations', component: () => import('./pages/Organizations.vue'), meta: { title: 'Organizations' } },
  { path: '/apps', component: () => import('./pages/Apps.vue'), meta: { title: 'Apps and sign-up' } },
  { path: '/notifications', component: () => import('./pages/Notifications.vue'), meta: { title: 'Notifications' } },
  { path: '/webhooks', component: () => import('./pages/Webhooks.vue'), meta: { title: 'Webhooks' } },
  { path: '/staff', component: () => import('./pages/Staff.vue'), meta: { title: 'Staff and API keys' } },
  { path: '/audit', component: () => import('./pages/Audit.vue'), meta: { title: 'Audit log' } },
  { path: '/account', component: () => import('./pages/Account.vue'), meta: { title: 'My account' } },
  { path: '/settings', component: () => import('./pages/Settings.vue'), meta: { title: 'Settings' } },
  { path: '/settings/portal', component: () => import('./pages/PortalSettings.vue'), meta: { title: 'Customer portal' } },
  { path: '/catalog', component: () => import('./pages/Catalog.vue'), meta: { title: 'Catalog' } },
  { path: '/catalog/plans/:id', component: () => import('./pages/PlanDetail.vue'), meta: { title: 'Plan' } },
  { path: '/usage', component: () => import('./pages/Usage.vue'), meta: { title: 'Usage' } },
  { path: '/billing', redirect: '/billing/invoices' },
  { path: '/billing/invoices', component: () => import('./pages/Invoices.vue'), meta: { title: 'Invoices' } },
  { path: '/billing/invoices/:id', component: () => import('./pages/InvoiceDetail.vue'), meta: { title: 'Invoice' } },
  { path: '/billing/credit-notes', component: () => import('./pages/CreditNotes.vue'), meta: { title: 'Credit notes' } },
  { path: '/billing/coupons', component: () => import('./pages/Coupons.vue'), meta: { title: 'Coupons' } },
  { path: '/billing/tax-rates', component: () => import('./pages/TaxRates.vue'), meta: { title: 'Tax rates' } },
  { path: '/billing/settings', component: () => import('./pages/BillingSettings.vue'), meta: { title: 'Billing settings' } },
  { path: '/payments', component: () => import('./pages/Payments.vue'), meta: { title: 'Payments' } },
  { path: '/payments/receivables', component: () => import('./pages/Receivables.vue'), meta: { title: 'Receivables aging' } },
  { path: '/payments/dunning', component: () => import('./pages/Dunning.vue'), meta: { title: 'Dunning' } },
  { path: '/payments/disputes', component: () => import('./pages/Disputes.vue'), meta: { title: 'Disputes' } },
  { path: '/payments/disputes/:id', component: () => import('./pages/DisputeDetail.vue'), meta: { title: 'Dispute' } },
  { path: '/payments/settings', component: () => import('./pages/PaymentSettings.vue'), meta: { title: 'Stripe' } },
  { path: '/payments/:id', component: () => import('./pages/PaymentDetail.vue'), meta: { title: 'Payment' } },
  { path: '/risk', redirect: '/risk/cases' },
  { path: '/risk/cases', component: () => import('./pages/RiskCases.vue'), meta: { title: 'Review queue' } },
  { path: '/risk/cases/:id', component: () => import('./pages/RiskCase.vue'), meta: { title: 'Review case' } },
  { path: '/risk/decisions', component: () => import('./pages/RiskDecisions.vue'), meta: { title: 'Risk decisions' } },
  { path: '/risk/rules', component: () => import('./pages/RiskRules.vue'), meta: { title: 'Risk rules' } },
  { path: '/risk/rules/:id', component: () => import('./pages/RiskRule.vue'), meta: { title: 'Risk rule' } },
  { path: '/risk/counters', component: () => import('./pages/RiskCounters.vue'), meta: { title: 'Risk counters and settings' } },
  { path: '/risk/lists', component: () => import('./pages/RiskLists.vue'), meta: { title: 'Risk lists' } },
  { path: '/risk/graph', component: () => import('./pages/RiskGraphPage.vue'), meta: { title: 'Risk graph' } },
  { path: '/messaging', component: () => import('./pages/Messaging.vue'), meta: { title: 'Messaging' } },
  { path: '/messaging/conversations/:id', component: () => import('./pages/Conversation.vue'), meta: { title: 'Conversation' } },
  { path: '/documents', component: () => import('./pages/Documents.vue'), meta: { title: 'Received documents' } },
  { path: '/documents/:id', component: () => import('./pages/DocumentDetail.vue'), meta: { title: 'Received document' } },
  { path: '/analytics', component: () => import('./pages/Analytics.vue'), meta: { title: 'Analytics' } },
  { path: '/:rest(.*)*', component: () => import('./pages/NotFound.vue'), meta: { title: 'Not found' } },
]

export const router = createRouter({ history: createWebHistory(), routes })

// loadPage starts fetching a route's lazy page while the guard waits for
// /api/v1/me: on a first load the two would otherwise follow each other.
// The router awaits the same import later and finds it done (or failed,
// which it reports then).
function loadPage(to: RouteLocationNormalized) {
  for (const record of to.matched) {
    for (const c of Object.values(record.components ?? {})) {
      if (typeof c === 'function') void (c as () => Promise<unknown>)().catch(() => undefined)
    }
  }
}

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  if (!session.signedIn()) return { path: '/sign-in', query: { next: to.fullPath } }
  if (!session.state.me) {
    const me = session.loadMe() // first: the browser sends at most six requests at once
    loadPage(to)
    if (!(await me)) return { path: '/sign-in', query: { next: to.fullPath } }
  }
  return true
})

router.afterEach((to) => {
  const t = to.meta.title as string | undefined
  document.title = t ? `${t} · Abacus` : 'Abacus'
})
