// useAction runs a page's state-changing request (refund, assign, save…)
// and keeps what the page shows about it: the problem (for ProblemMessage
// and the fields' messages), a notice once done, and whether it is busy.
import { ref, shallowRef } from 'vue'

export function useAction() {
  const error = shallowRef<unknown>(null)
  const notice = ref('')
  const busy = ref(false)
  async function run<T>(fn: () => Promise<T>, done = ''): Promise<T | undefined> {
    error.value = null
    notice.value = ''
    busy.value = true
    try {
      const v = await fn()
      notice.value = done
      return v
    } catch (e) {
      error.value = e
      return undefined
    } finally {
      busy.value = false
    }
  }
  return { error, notice, busy, run }
}
