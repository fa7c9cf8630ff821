package throttle

import "container/list"

// table is a map bounded to max entries. Entries are kept in the order
// they were last touched, so the stalest are found (and evicted) at the
// back in O(1). Not safe for concurrent use; the limiters lock around it.
type table[V any] struct {
	max int
	m   map[string]*list.Element
	ll  list.List // front: most recently touched; values are *entry[V]
}

type entry[V any] struct {
	key string
	v   V
}

func newTable[V any](max int) *table[V] {
	return &table[V]{max: max, m: make(map[string]*list.Element)}
}

// get returns the value for key, or nil.
func (t *table[V]) get(key string) *V {
	if el, ok := t.m[key]; ok {
		return &el.Value.(*entry[V]).v
	}
	return nil
}

// touch returns the value for key, creating a zero one if needed, and
// marks it most recently used. Before creating, it drops stale entries
// from the back (stale reports whether an entry can be forgotten) and, if
// the table is still full, the least recently touched entry: bounded
// memory matters more than remembering every key an attacker sprays.
func (t *table[V]) touch(key string, stale func(*V) bool) *V {
	if el, ok := t.m[key]; ok {
		t.ll.MoveToFront(el)
		return &el.Value.(*entry[V]).v
	}
	for back := t.ll.Back(); back != nil && stale(&back.Value.(*entry[V]).v); back = t.ll.Back() {
		t.removeElement(back)
	}
	if len(t.m) >= t.max {
		t.removeElement(t.ll.Back())
	}
	e := &entry[V]{key: key}
	t.m[key] = t.ll.PushFront(e)
	return &e.v
}

func (t *table[V]) remove(key string) {
	if el, ok := t.m[key]; ok {
		t.removeElement(el)
	}
}

func (t *table[V]) removeElement(el *list.Element) {
	delete(t.m, el.Value.(*entry[V]).key)
	t.ll.Remove(el)
}

func (t *table[V]) len() int { return len(t.m) }
