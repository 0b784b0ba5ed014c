package ciphersuite

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Guards of the Milagro CS server (docs/protocol.md §2, §3.4): what a server
// checks before it spends a pairing on a ClientHello. A CS hello costs the
// server about two pairings; these keep a stranger from turning that into a
// denial of service or an online PIN search:
//
//   - Lockout: after Threshold consecutive failed proofs for an identity,
//     its attempts are refused for a backoff that doubles up to MaxBackoff.
//   - ReplayCache: a valid hello seen once within the skew window is
//     refused the second time, before any pairing.
//   - PairingGate: bounds concurrent pairing work, with per-source rates
//     and fair queueing so one flooding source cannot starve the others.

// Lockout defaults (docs/protocol.md §3.4).
const (
	DefaultLockoutThreshold = 5
	DefaultLockoutBackoff   = time.Minute
	DefaultLockoutMax       = time.Hour
	// lockoutEntries bounds the identities tracked; when full, the least
	// recently failed one is forgotten.
	lockoutEntries = 65536
)

// Lockout counts consecutive failed CS proofs per identity. It is safe for
// concurrent use and uses bounded memory. A nil *Lockout locks nobody out.
type Lockout struct {
	Threshold  int           // failures before a lockout; 0 means DefaultLockoutThreshold
	Backoff    time.Duration // first lockout; 0 means DefaultLockoutBackoff
	MaxBackoff time.Duration // longest lockout; 0 means DefaultLockoutMax
	// OnLock, if set, is called (outside the lock) when an identity becomes
	// locked out, with the lockout's end.
	OnLock func(id string, until time.Time)

	mu      sync.Mutex
	entries map[string]*list.Element
	lru     list.List // of *lockEntry, most recently failed at the front
}

type lockEntry struct {
	id       string
	failures int
	locks    int // lockouts so far (for the doubling)
	until    time.Time
}

// NewLockout returns a Lockout with the defaults.
func NewLockout() *Lockout { return &Lockout{} }

func (l *Lockout) threshold() int {
	if l.Threshold > 0 {
		return l.Threshold
	}
	return DefaultLockoutThreshold
}

// Locked reports whether id is locked out at now, and until when.
func (l *Lockout) Locked(id string, now time.Time) (bool, time.Time) {
	if l == nil {
		return false, time.Time{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[id]
	if !ok {
		return false, time.Time{}
	}
	le := e.Value.(*lockEntry)
	if now.Before(le.until) {
		return true, le.until
	}
	return false, time.Time{}
}

// Failure records a failed proof for id at now; it returns whether id is
// now locked out.
func (l *Lockout) Failure(id string, now time.Time) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	if l.entries == nil {
		l.entries = make(map[string]*list.Element)
	}
	var le *lockEntry
	if e, ok := l.entries[id]; ok {
		le = e.Value.(*lockEntry)
		l.lru.MoveToFront(e)
	} else {
		if l.lru.Len() >= lockoutEntries {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.entries, old.Value.(*lockEntry).id)
		}
		le = &lockEntry{id: id}
		l.entries[id] = l.lru.PushFront(le)
	}
	le.failures++
	locked := false
	if le.failures >= l.threshold() {
		d := l.Backoff
		if d <= 0 {
			d = DefaultLockoutBackoff
		}
		max := l.MaxBackoff
		if max <= 0 {
			max = DefaultLockoutMax
		}
		for i := 0; i < le.locks && d < max; i++ {
			d *= 2
		}
		if d > max {
			d = max
		}
		le.locks++
		le.failures = 0
		le.until = now.Add(d)
		locked = true
	}
	until, cb := le.until, l.OnLock
	l.mu.Unlock()
	if locked && cb != nil {
		cb(id, until)
	}
	return locked
}

// Success resets id's count and lockouts.
func (l *Lockout) Success(id string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	if e, ok := l.entries[id]; ok {
		l.lru.Remove(e)
		delete(l.entries, id)
	}
	l.mu.Unlock()
}

// Len returns the number of identities tracked.
func (l *Lockout) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// ReplayCache remembers valid CS hellos for the skew window so that the
// same hello is refused a second time before any pairing. It holds at most
// Max entries (0 means 1<<20, about 80 MB at the limit); when full it drops
// the oldest, which may then be replayed once more (harmless beyond its
// cost: a replayer without x cannot derive the session key).
type ReplayCache struct {
	Max int

	mu    sync.Mutex
	seen  map[[32]byte]time.Time
	order list.List // of replayKey, oldest at the back
}

type replayKey struct {
	h      [32]byte
	expiry time.Time
}

// NewReplayCache returns an empty cache with the default bound.
func NewReplayCache() *ReplayCache { return &ReplayCache{} }

func replayHash(hello []byte) [32]byte { return sha256.Sum256(hello) }

// Seen reports whether the hello (the raw milagro_cs extension) was
// recorded and has not expired at now.
func (c *ReplayCache) Seen(hello []byte, now time.Time) bool {
	if c == nil {
		return false
	}
	h := replayHash(hello)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	exp, ok := c.seen[h]
	return ok && now.Before(exp)
}

// Add records a verified hello until expiry.
func (c *ReplayCache) Add(hello []byte, now, expiry time.Time) {
	if c == nil {
		return
	}
	h := replayHash(hello)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = make(map[[32]byte]time.Time)
	}
	c.expire(now)
	if _, ok := c.seen[h]; ok {
		return
	}
	max := c.Max
	if max <= 0 {
		max = 1 << 20
	}
	for c.order.Len() >= max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.seen, old.Value.(replayKey).h)
	}
	c.seen[h] = expiry
	c.order.PushFront(replayKey{h: h, expiry: expiry})
}

// expire drops entries that expired (mostly at the back: expiries are
// close to insertion order).
func (c *ReplayCache) expire(now time.Time) {
	for i := 0; i < 64; i++ {
		old := c.order.Back()
		if old == nil {
			return
		}
		k := old.Value.(replayKey)
		if now.Before(k.expiry) {
			return
		}
		c.order.Remove(old)
		delete(c.seen, k.h)
	}
}

// Len returns the number of hellos remembered.
func (c *ReplayCache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// PairingGate admits pairing work. Acquire blocks until the work of source
// (a client address, as the transport names it) may run, and returns the
// function to call when it is done, saying whether the client's proof
// verified; an error means the work is refused (the source spent its
// budget of failed proofs, its queue is full, or ctx ended).
type PairingGate interface {
	Acquire(ctx context.Context, source string) (release func(verified bool), err error)
}

// ErrBusy is returned by a PairingGate that refuses work.
var ErrBusy = errors.New("server busy: too much Milagro pairing work from this source")
