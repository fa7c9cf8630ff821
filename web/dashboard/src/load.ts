// useLoad loads one value for a page (a short list, settings) and exposes
// the states DataState shows; reload() runs it again, e.g. after a form
// created an item. Paginated lists use usePagedList instead.
import { ref, shallowRef, type Ref } from 'vue'

export function useLoad<T>(fn: () => Promise<T>, initial: T) {
  const data = shallowRef(initial) as Ref<T>
  const loading = ref(true)
  const error = shallowRef<unknown>(null)
  async function reload() {
    try {
      data.value = await fn()
      error.value = null
    } catch (e) {
      error.value = e
    } finally {
      loading.value = false
    }
  }
  reload()
  return { data, loading, error, reload }
}
