package mtls

import "sync"

// NewLRUClientSessionCache returns a ClientSessionCache holding up to
// capacity sessions (0 or less: 64); when full, storing a new session drops
// the one used least recently (stored or looked up).
func NewLRUClientSessionCache(capacity int) ClientSessionCache {
	if capacity < 1 {
		capacity = 64
	}
	return &sessionCache{index: make(map[string]int), capacity: capacity, newest: noSlot, oldest: noSlot}
}

// sessionCache keeps its sessions in slots of one slice, which grows up to
// the capacity and is then reused. The occupied slots form a chain in
// recency order through their newer/older indices, so a look-up, a store
// and an eviction each cost O(1) and no allocation once the slice is full.
type sessionCache struct {
	mu       sync.Mutex
	index    map[string]int // server key → slot
	slots    []cacheSlot
	vacant   []int // slots emptied by Put(key, nil), reused first
	newest   int   // head of the recency chain (noSlot when empty)
	oldest   int   // tail: the next to evict
	capacity int
}

type cacheSlot struct {
	key          string
	state        *ClientSessionState
	newer, older int // neighbours in the recency chain, noSlot at the ends
}

const noSlot = -1

// detach takes slot i out of the recency chain.
func (c *sessionCache) detach(i int) {
	s := &c.slots[i]
	if s.newer == noSlot {
		c.newest = s.older
	} else {
		c.slots[s.newer].older = s.older
	}
	if s.older == noSlot {
		c.oldest = s.newer
	} else {
		c.slots[s.older].newer = s.newer
	}
	s.newer, s.older = noSlot, noSlot
}

// attachNewest puts slot i (detached) at the head of the recency chain.
func (c *sessionCache) attachNewest(i int) {
	s := &c.slots[i]
	s.newer, s.older = noSlot, c.newest
	if c.newest != noSlot {
		c.slots[c.newest].newer = i
	}
	c.newest = i
	if c.oldest == noSlot {
		c.oldest = i
	}
}

// takeSlot returns a detached slot for a new entry: a vacant one, a new
// one while below capacity, else the least recently used, evicted.
func (c *sessionCache) takeSlot() int {
	if n := len(c.vacant); n > 0 {
		i := c.vacant[n-1]
		c.vacant = c.vacant[:n-1]
		return i
	}
	if len(c.slots) < c.capacity {
		c.slots = append(c.slots, cacheSlot{newer: noSlot, older: noSlot})
		return len(c.slots) - 1
	}
	i := c.oldest
	c.detach(i)
	delete(c.index, c.slots[i].key)
	return i
}

// Put stores cs for key; a nil cs forgets key's session.
func (c *sessionCache) Put(key string, cs *ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[key]
	switch {
	case ok && cs == nil:
		c.detach(i)
		delete(c.index, key)
		c.slots[i] = cacheSlot{newer: noSlot, older: noSlot}
		c.vacant = append(c.vacant, i)
	case ok:
		c.slots[i].state = cs
		c.detach(i)
		c.attachNewest(i)
	case cs != nil:
		i = c.takeSlot()
		c.slots[i].key, c.slots[i].state = key, cs
		c.attachNewest(i)
		c.index[key] = i
	}
}

// Get returns key's session and marks it as the most recently used.
func (c *sessionCache) Get(key string) (*ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[key]
	if !ok {
		return nil, false
	}
	c.detach(i)
	c.attachNewest(i)
	return c.slots[i].state, true
}
