// v-scroll-focus makes a container that scrolls sideways (a wide table at
// phone width) reachable with the keyboard, so its hidden columns can be
// scrolled into view; one that fits takes no tab stop.
import type { Directive } from 'vue'

const observers = new WeakMap<HTMLElement, ResizeObserver>()

function update(el: HTMLElement) {
  const scrolls = el.scrollWidth > el.clientWidth
  if (scrolls) el.setAttribute('tabindex', '0')
  else el.removeAttribute('tabindex')
}

export const scrollFocus: Directive<HTMLElement> = {
  mounted(el) {
    update(el)
    const ro = new ResizeObserver(() => update(el))
    ro.observe(el)
    observers.set(el, ro)
  },
  updated: update,
  unmounted(el) {
    observers.get(el)?.disconnect()
  },
}
