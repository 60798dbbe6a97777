package cri

import (
	"slices"
	"testing"
)

// A list builds a record's message once while the record stays the same
// (the view's), again for a record replaced (its row changed) or under
// another gen, and keeps the messages of records a filtered list left out.
func TestListCacheReusesMessages(t *testing.T) {
	type rec struct{ n int }
	type msg struct{ n int }
	var c listCache[*rec, *msg]
	made := 0
	mk := func(r *rec) *msg { made++; return &msg{r.n} }
	all := func(*rec) bool { return true }
	a, b := &rec{1}, &rec{2}
	first := c.build(nil, []*rec{a, b}, all, mk)
	if made != 2 || len(first) != 2 || first[0].n != 1 || first[1].n != 2 {
		t.Fatalf("first list: %d made, %v", made, first)
	}
	onlyB := c.build(nil, []*rec{a, b}, func(r *rec) bool { return r == b }, mk)
	if made != 2 || len(onlyB) != 1 || onlyB[0] != first[1] {
		t.Fatalf("filtered list: %d made, %v; want b's message kept", made, onlyB)
	}
	a2 := &rec{3} // a's row changed
	again := c.build(nil, []*rec{a2, b}, all, mk)
	if made != 3 || again[0].n != 3 || again[1] != first[1] {
		t.Fatalf("after a change: %d made, %v; want the changed record's built, b's kept", made, again)
	}
	other := c.build("images changed", []*rec{a2, b}, all, mk)
	if made != 5 || slices.Contains(other, again[1]) {
		t.Fatalf("under another gen: %d made; want both built again", made)
	}
}
