// The customer portal: its own entry and route tree under /portal, sharing
// the dashboard's components, styles and API error handling, with none of
// the staff pages in its bundle.
import { createApp } from 'vue'
import { createRouter, createWebHistory } from 'vue-router'
import PortalApp from './PortalApp.vue'
import '../style.css'
import './portal.css'

const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/portal', component: () => import('./pages/Home.vue'), meta: { title: 'Billing' } },
    { path: '/portal/open', component: () => import('./pages/Open.vue'), meta: { title: 'Opening the billing portal', bare: true } },
    { path: '/portal/invoices/:id', component: () => import('./pages/Invoice.vue'), meta: { title: 'Invoice' } },
    { path: '/portal/:rest(.*)*', redirect: '/portal' },
  ],
})
router.afterEach((to) => {
  document.title = (to.meta.title as string) ?? 'Billing'
})

createApp(PortalApp).use(router).mount('#app')
