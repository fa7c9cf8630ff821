// usePagedList loads one page of a {data, next_cursor} list whenever the
// URL's filters or cursor change, cancelling a request the user has
// already moved past, and exposes the states DataState shows. A page with
// two lists names the second one's cursor (cursorKey), so each keeps its
// own in the URL; load still gets it as filters.cursor.
import { reactive, ref, shallowRef, watch } from 'vue'
import type { List } from './api/client'
import { useQueryState } from './url'

export function usePagedList<T, K extends string>(
  filterKeys: readonly K[],
  load: (filters: Record<K | 'cursor', string>, signal: AbortSignal) => Promise<List<T>>,
  cursorKey = 'cursor',
) {
  const q = useQueryState([...filterKeys, cursorKey] as (K | 'cursor')[])
  const values = () => ({ ...q.values.value, cursor: q.values.value[cursorKey as 'cursor'] })
  const setCursor = (patch: Partial<Record<K, string>>, cursor: string, push: boolean) =>
    q.set({ ...patch, [cursorKey]: cursor } as Partial<Record<K | 'cursor', string>>, { push })
  const items = shallowRef<T[]>([])
  const next = ref('')
  const loading = ref(true)
  const error = shallowRef<unknown>(null)
  const seen: string[] = [] // cursors of the pages before this one
  let inflight: AbortController | null = null

  async function fetchPage() {
    inflight?.abort()
    const ctl = (inflight = new AbortController())
    loading.value = true
    error.value = null
    try {
      const page = await load(values(), ctl.signal)
      if (ctl.signal.aborted) return
      items.value = page.data
      next.value = page.next_cursor
    } catch (e) {
      // Aborted: moved on, or every request cancelled by signing out.
      if (ctl.signal.aborted || (e instanceof DOMException && e.name === 'AbortError')) return
      error.value = e
      items.value = []
      next.value = ''
    } finally {
      if (inflight === ctl) loading.value = false
    }
  }

  watch(() => JSON.stringify(q.values.value), fetchPage, { immediate: true })

  /**
   * Text inputs for some filters: edited freely, applied together with
   * filter(), and set again from the URL when it changes (back, a link).
   */
  function drafts<D extends K>(keys: readonly D[]) {
    const d = reactive({} as Record<string, string>) as Record<D, string>
    const sync = () => { for (const k of keys) d[k] = q.values.value[k] }
    sync()
    watch(() => JSON.stringify(keys.map((k) => q.values.value[k])), sync)
    return d
  }

  return {
    filters: q.values,
    drafts,
    items,
    next,
    loading,
    error,
    reload: fetchPage,
    hasPrevious: () => values().cursor !== '',
    /** Changes filters and goes back to the first page. */
    filter(patch: Partial<Record<K, string>>) {
      seen.length = 0
      return setCursor(patch, '', false)
    },
    nextPage() {
      seen.push(values().cursor)
      return setCursor({}, next.value, true)
    },
    previousPage() {
      return setCursor({}, seen.pop() ?? '', true)
    },
  }
}
