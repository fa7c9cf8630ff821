package abacus

// List is one page of a list: the items in order and the cursor of the
// next page, "" on the last one. Every list route of the API answers it
// (`{"data": […], "next_cursor": "…"}`), except the OpenMeter-compatible
// routes, which keep OpenMeter's shapes (docs/api.md).
type List[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// ListOf returns items as a List whose next page starts after next ("" at
// the end). Nil items become an empty list, so Data is never null.
func ListOf[T any](items []T, next string) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Data: items, NextCursor: next}
}
