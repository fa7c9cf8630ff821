// The navigation, in order. A page is added by adding its route in
// router.ts and, when it belongs in the side bar, an entry here.
export interface NavItem {
  to: string
  label: string
}

export const nav: NavItem[] = [
  { to: '/', label: 'Overview' },
  { to: '/analytics', label: 'Analytics' },
  { to: '/customers', label: 'Customers' },
  { to: '/catalog', label: 'Catalog' },
  { to: '/usage', label: 'Usage' },
  { to: '/billing', label: 'Billing' },
  { to: '/payments', label: 'Payments' },
  { to: '/risk', label: 'Risk' },
  { to: '/documents', label: 'Documents' },
  { to: '/messaging', label: 'Messaging' },
  { to: '/end-users', label: 'End users' },
  { to: '/organizations', label: 'Organizations' },
  { to: '/apps', label: 'Apps & sign-up' },
  { to: '/notifications', label: 'Notifications' },
  { to: '/webhooks', label: 'Webhooks' },
  { to: '/staff', label: 'Staff & API keys' },
  { to: '/audit', label: 'Audit log' },
  { to: '/settings', label: 'Settings' },
]
