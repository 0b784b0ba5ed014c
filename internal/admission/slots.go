package admission

import (
	"container/list"
	"sync"
)

// DefaultSlots is the handshakes in progress a Slots admits in all.
const DefaultSlots = 1024

// Slots bounds the connections whose handshake is in progress, in all
// (Max) and per source (PerSource), and shares them fairly: when every
// slot is taken, a new connection from a source holding fewer slots than
// the source holding the most takes one of that source's slots — its
// oldest connection is evicted (its evict function is called). So many
// silent or dripping connections from a few sources cannot keep a new
// source out; at worst they leave it an equal share.
type Slots struct {
	Max       int // 0 means DefaultSlots
	PerSource int // 0 means no bound but Max
	// Clock is the set's clock; Slots itself orders by arrival and reads
	// no time.
	Clock Clock

	mu    sync.Mutex
	total int
	seq   uint64
	per   map[Source]*list.List // of *Slot, oldest at the front
}

// Slot is one admitted handshake.
type Slot struct {
	s     *Slots
	src   Source
	elem  *list.Element
	evict func()
	seq   uint64 // acquisition order
	gone  bool   // released or evicted
	taken bool   // evicted
}

func (s *Slots) max() int {
	if s.Max > 0 {
		return s.Max
	}
	return DefaultSlots
}

// Acquire admits a handshake from src. evict (may be nil) is called,
// outside any lock, if the slot is later taken by another source; the
// caller then closes the connection. ok is false when src may not have
// another slot.
func (s *Slots) Acquire(src Source, evict func()) (slot *Slot, ok bool) {
	s.mu.Lock()
	if s.per == nil {
		s.per = make(map[Source]*list.List)
	}
	mine := s.per[src]
	n := 0
	if mine != nil {
		n = mine.Len()
	}
	if s.PerSource > 0 && n >= s.PerSource {
		s.mu.Unlock()
		return nil, false
	}
	var victim *Slot
	if s.total >= s.max() {
		// Take a slot from the source holding the most, oldest first, if it
		// holds at least two more than src would.
		var big *list.List
		for _, l := range s.per {
			if big == nil || l.Len() > big.Len() ||
				(l.Len() == big.Len() && l.Front().Value.(*Slot).seq < big.Front().Value.(*Slot).seq) {
				big = l
			}
		}
		if big == nil || big.Len() <= n+1 {
			s.mu.Unlock()
			return nil, false
		}
		victim = big.Front().Value.(*Slot)
		s.remove(victim)
		victim.taken = true
	}
	if mine == nil {
		mine = list.New()
		s.per[src] = mine
	}
	s.seq++
	slot = &Slot{s: s, src: src, evict: evict, seq: s.seq}
	slot.elem = mine.PushBack(slot)
	s.total++
	s.mu.Unlock()
	if victim != nil && victim.evict != nil {
		victim.evict()
	}
	return slot, true
}

// remove takes sl out (s.mu held).
func (s *Slots) remove(sl *Slot) {
	if sl.gone {
		return
	}
	sl.gone = true
	l := s.per[sl.src]
	l.Remove(sl.elem)
	if l.Len() == 0 {
		delete(s.per, sl.src)
	}
	s.total--
}

// Release frees the slot (the handshake ended). It is safe to call more
// than once and after an eviction.
func (sl *Slot) Release() {
	if sl == nil {
		return
	}
	sl.s.mu.Lock()
	sl.s.remove(sl)
	sl.s.mu.Unlock()
}

// Evicted reports whether another source took this slot.
func (sl *Slot) Evicted() bool {
	sl.s.mu.Lock()
	defer sl.s.mu.Unlock()
	return sl.taken
}

// Scarce reports whether more than three quarters of the slots are taken:
// then a connection that has not sent its whole first message should get
// a short deadline.
func (s *Slots) Scarce() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total*4 > s.max()*3
}

// Len returns the slots taken.
func (s *Slots) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Held returns the slots src holds.
func (s *Slots) Held(src Source) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.per[src]; l != nil {
		return l.Len()
	}
	return 0
}
