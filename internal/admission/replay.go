package admission

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultReplayEntries bounds a Replay (about 80 MB at the limit).
const DefaultReplayEntries = 1 << 20

// Replay remembers hellos for their validity window so that each is
// judged once. Reserve records a hello atomically before any work on it,
// so concurrent copies of one hello cost one proof, and the record stays
// whatever the outcome: a replayed failed hello is refused as cheaply as
// a replayed good one and counts once. It holds at most Max entries; when
// full it forgets the one expiring first in insertion order (which could
// then be replayed once more). A nil *Replay remembers nothing.
type Replay struct {
	Max   int // 0 means DefaultReplayEntries
	Clock Clock

	mu    sync.Mutex
	seen  map[[32]byte]time.Time
	order list.List // of replayKey, oldest at the back
}

type replayKey struct {
	h      [32]byte
	expiry time.Time
}

// Reserve records hello until expiry and reports true, or reports false
// when hello was recorded already and has not expired (a replay).
func (r *Replay) Reserve(hello []byte, expiry time.Time) bool {
	if r == nil {
		return true
	}
	h := sha256.Sum256(hello)
	now := r.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = make(map[[32]byte]time.Time)
	}
	r.expire(now)
	if exp, ok := r.seen[h]; ok && now.Before(exp) {
		return false
	}
	max := r.Max
	if max <= 0 {
		max = DefaultReplayEntries
	}
	for r.order.Len() >= max {
		old := r.order.Back()
		r.order.Remove(old)
		delete(r.seen, old.Value.(replayKey).h)
	}
	r.seen[h] = expiry
	r.order.PushFront(replayKey{h: h, expiry: expiry})
	return true
}

// expire drops entries that expired, from the back (r.mu held).
func (r *Replay) expire(now time.Time) {
	for i := 0; i < 64; i++ {
		old := r.order.Back()
		if old == nil {
			return
		}
		k := old.Value.(replayKey)
		if now.Before(k.expiry) {
			return
		}
		r.order.Remove(old)
		if r.seen[k.h] == k.expiry {
			delete(r.seen, k.h)
		}
	}
}

// Len returns the hellos remembered.
func (r *Replay) Len() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len()
}
