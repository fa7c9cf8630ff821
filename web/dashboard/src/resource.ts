// useResource loads one thing (an object, a short list) at once and again
// whenever source changes, with the states DataState shows.
import { ref, shallowRef, watch, type WatchSource } from 'vue'

export function useResource<T>(load: (signal: AbortSignal) => Promise<T>, source: WatchSource<unknown> = () => 0) {
  const data = shallowRef<T | null>(null)
  const loading = ref(true)
  const error = shallowRef<unknown>(null)
  let inflight: AbortController | null = null

  async function reload() {
    inflight?.abort()
    const ctl = (inflight = new AbortController())
    loading.value = true
    error.value = null
    try {
      const v = await load(ctl.signal)
      if (!ctl.signal.aborted) data.value = v
    } catch (e) {
      // Aborted: moved on, or every request cancelled by signing out.
      if (!ctl.signal.aborted && !(e instanceof DOMException && e.name === 'AbortError')) {
        error.value = e
        data.value = null
      }
    } finally {
      if (inflight === ctl) loading.value = false
    }
  }

  watch(source, reload, { immediate: true })
  return { data, loading, error, reload }
}
