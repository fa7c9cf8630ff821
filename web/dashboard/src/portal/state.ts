// The portal's one shared object: the overview (who the customer is, the
// tenant's branding), loaded once per page load and reloaded after a change.
import { reactive } from 'vue'
import { portal, type Overview } from './api'

export const state = reactive<{ overview: Overview | null; error: unknown; loading: boolean }>({ overview: null, error: null, loading: false })

export async function loadOverview(): Promise<void> {
  state.loading = true
  try {
    state.overview = await portal.get<Overview>('overview')
    state.error = null
  } catch (e) {
    state.error = e
  } finally {
    state.loading = false
  }
}
