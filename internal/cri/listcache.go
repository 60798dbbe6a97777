package cri

import "sync"

// listCache keeps the CRI messages the list calls built for the view's
// records (ListContainers, ListPodSandbox). The view hands out the same
// record until its row changes (engine View), so kubelet's relist, which
// lists every container and pod each second, builds again only the
// messages of the records that changed: building them (labels copied
// without the reserved ones, the image's names looked up) was most of a
// list of fifty containers. A message is shared by the answers that
// carry it and never changed (gRPC only reads it). gen is what the
// messages depend on besides their record (the image records, for the
// containers' image names): another gen drops them all.
type listCache[R comparable, M any] struct {
	mu  sync.Mutex
	gen any
	m   map[R]M
}

// build returns the messages of the records of recs that list says to
// list, in order: kept ones where the last call (under the same gen)
// built one for that record, else made by message. What it keeps from then
// on is the messages of recs, the records that still exist.
func (c *listCache[R, M]) build(gen any, recs []R, list func(R) bool, message func(R) M) []M {
	c.mu.Lock()
	prev := c.m
	if c.gen != gen {
		prev = nil
	}
	c.mu.Unlock()
	next := map[R]M{}
	var out []M
	for _, r := range recs {
		m, ok := prev[r]
		if ok {
			next[r] = m
		}
		if !list(r) {
			continue
		}
		if !ok {
			m = message(r)
			next[r] = m
		}
		out = append(out, m)
	}
	c.mu.Lock()
	c.gen, c.m = gen, next
	c.mu.Unlock()
	return out
}
