// Filters live in the URL so a view can be shared or bookmarked: a page
// reads them with useQueryState and writes them back with set(), which
// replaces the query string (search, cursor, status…).
import { computed } from 'vue'
import { useRoute, useRouter } from 'vue-router'

export function useQueryState<K extends string>(keys: readonly K[]) {
  const route = useRoute()
  const router = useRouter()
  const values = computed(() => {
    const out = {} as Record<K, string>
    for (const k of keys) {
      const v = route.query[k]
      out[k] = typeof v === 'string' ? v : ''
    }
    return out
  })
  function set(patch: Partial<Record<K, string>>, opts: { push?: boolean } = {}) {
    const query = { ...route.query }
    for (const [k, v] of Object.entries(patch) as [K, string | undefined][]) {
      if (v) query[k] = v
      else delete query[k]
    }
    const to = { path: route.path, query }
    return opts.push ? router.push(to) : router.replace(to)
  }
  return { values, set }
}
