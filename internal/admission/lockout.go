package admission

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Lockout defaults: 5 failures of one identity from one source lock that
// source out for the identity, 100 from all sources together lock
// everyone out; the backoff starts at a minute and doubles up to an hour.
const (
	DefaultSourceThreshold   = 5
	DefaultIdentityThreshold = 100
	DefaultBackoff           = time.Minute
	DefaultMaxBackoff        = time.Hour
	DefaultLockoutEntries    = 65536
)

// Lockout counts failed proofs per identity and source, and per identity
// over all sources. After SourceThreshold consecutive failures of one
// (identity, source) that source's attempts for the identity are refused;
// after IdentityThreshold from all sources together, everyone's are. Each
// for a backoff that doubles from Backoff up to MaxBackoff. Proofs that
// were already in flight when a lock was set do not count again, so one
// burst escalates the backoff at most once. A success (the caller decides
// what that is: a completed handshake) resets the identity.
//
// Memory is bounded by MaxEntries. To make room, an unlocked entry is
// forgotten (least recently failed first); a locked one never is: when
// the table is full of locked entries, new failures are refused cheaply
// (Failure returns false) and counted (Dropped).
//
// The trade-off that remains: anyone who knows an identity and controls
// IdentityThreshold/SourceThreshold sources can lock it out for a while.
// A nil *Lockout locks nobody out.
type Lockout struct {
	SourceThreshold   int           // 0 means DefaultSourceThreshold
	IdentityThreshold int           // 0 means DefaultIdentityThreshold
	Backoff           time.Duration // 0 means DefaultBackoff
	MaxBackoff        time.Duration // 0 means DefaultMaxBackoff
	MaxEntries        int           // 0 means DefaultLockoutEntries
	Clock             Clock
	// OnLock, if set, is called (outside the lock) when an identity becomes
	// locked out, for one source or for all.
	OnLock func(LockEvent)

	mu       sync.Mutex
	m        map[lockKey]*list.Element // of *lockEntry
	unlocked list.List                 // most recently failed at the front
	locked   list.List                 // entries whose lock may still run
	nextFree time.Time                 // earliest end of a lock in locked
	dropped  uint64
	seq      atomic.Uint64 // attempts begun (see Begin)
}

// LockEvent describes a new lock: ID is locked out for Source, or for
// every source when AllSources, until Until.
type LockEvent struct {
	ID         string
	Source     Source
	AllSources bool
	Until      time.Time
}

// Attempt marks when a proof was admitted (see Lockout.Begin).
type Attempt uint64

type lockKey struct {
	id  string
	src Source
	all bool // the identity-wide count
}

type lockEntry struct {
	key      lockKey
	failures int
	locks    int       // lockouts so far (for the doubling)
	until    time.Time // end of the current lock
	lockedAt Attempt   // the last attempt begun when the current lock was set
	inLocked bool
}

func (l *Lockout) sourceThreshold() int {
	if l.SourceThreshold > 0 {
		return l.SourceThreshold
	}
	return DefaultSourceThreshold
}

func (l *Lockout) identityThreshold() int {
	if l.IdentityThreshold > 0 {
		return l.IdentityThreshold
	}
	return DefaultIdentityThreshold
}

// Locked reports whether id's attempts from src are refused now, and until
// when.
func (l *Lockout) Locked(id string, src Source) (bool, time.Time) {
	if l == nil {
		return false, time.Time{}
	}
	now := l.Clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	for _, k := range [2]lockKey{{id: id, all: true}, {id: id, src: src}} {
		if e, ok := l.m[k]; ok {
			if u := e.Value.(*lockEntry).until; now.Before(u) && u.After(until) {
				until = u
			}
		}
	}
	return !until.IsZero(), until
}

// Begin marks the start of a proof (call it when the proof is admitted,
// before its pairing) and returns the mark to pass to Failure.
func (l *Lockout) Begin() Attempt {
	if l == nil {
		return 0
	}
	return Attempt(l.seq.Add(1))
}

// Failure records a failed proof for id from src; started is Begin's mark
// for that proof. A proof begun before the lock it would extend was set
// does not count. It returns false when the table is full of locked
// entries and the failure was not recorded.
func (l *Lockout) Failure(id string, src Source, started Attempt) bool {
	if l == nil {
		return true
	}
	now := l.Clock.Now()
	var events [2]LockEvent
	n := 0
	l.mu.Lock()
	ok := true
	for _, k := range [2]lockKey{{id: id, src: src}, {id: id, all: true}} {
		le := l.get(k, now)
		if le == nil {
			l.dropped++
			ok = false
			break
		}
		if le.locks > 0 && started <= le.lockedAt {
			continue // in flight when the lock was set: that burst already counted
		}
		le.failures++
		th := l.sourceThreshold()
		if k.all {
			th = l.identityThreshold()
		}
		if le.failures < th {
			continue
		}
		d := l.Backoff
		if d <= 0 {
			d = DefaultBackoff
		}
		max := l.MaxBackoff
		if max <= 0 {
			max = DefaultMaxBackoff
		}
		for i := 0; i < le.locks && d < max; i++ {
			d *= 2
		}
		if d > max {
			d = max
		}
		le.locks++
		le.failures = 0
		le.lockedAt = Attempt(l.seq.Load())
		le.until = now.Add(d)
		l.toLocked(le)
		events[n] = LockEvent{ID: id, Source: src, AllSources: k.all, Until: le.until}
		n++
	}
	cb := l.OnLock
	l.mu.Unlock()
	if cb != nil {
		for _, ev := range events[:n] {
			cb(ev)
		}
	}
	return ok
}

// get returns k's entry, making room for a new one if needed; nil when
// the table is full of running locks (l.mu held).
func (l *Lockout) get(k lockKey, now time.Time) *lockEntry {
	if l.m == nil {
		l.m = make(map[lockKey]*list.Element)
	}
	if e, ok := l.m[k]; ok {
		le := e.Value.(*lockEntry)
		if !le.inLocked {
			l.unlocked.MoveToFront(e)
		}
		return le
	}
	max := l.MaxEntries
	if max <= 0 {
		max = DefaultLockoutEntries
	}
	if len(l.m) >= max {
		if l.unlocked.Len() == 0 && !now.Before(l.nextFree) {
			l.freeExpired(now)
		}
		old := l.unlocked.Back()
		if old == nil {
			return nil // full of running locks: refuse cheaply until nextFree
		}
		l.unlocked.Remove(old)
		delete(l.m, old.Value.(*lockEntry).key)
	}
	le := &lockEntry{key: k}
	l.m[k] = l.unlocked.PushFront(le)
	return le
}

// toLocked moves le to the locked list (l.mu held).
func (l *Lockout) toLocked(le *lockEntry) {
	if le.inLocked {
		if le.until.Before(l.nextFree) {
			l.nextFree = le.until
		}
		return
	}
	l.unlocked.Remove(l.m[le.key])
	le.inLocked = true
	l.m[le.key] = l.locked.PushBack(le)
	if l.locked.Len() == 1 || le.until.Before(l.nextFree) {
		l.nextFree = le.until
	}
}

// freeExpired moves every entry whose lock ended to the unlocked list and
// recomputes nextFree (l.mu held). It runs at most once per lock end.
func (l *Lockout) freeExpired(now time.Time) {
	var next time.Time
	for e := l.locked.Front(); e != nil; {
		nx := e.Next()
		le := e.Value.(*lockEntry)
		if !now.Before(le.until) {
			l.locked.Remove(e)
			le.inLocked = false
			l.m[le.key] = l.unlocked.PushBack(le) // least recent: forgotten first
		} else if next.IsZero() || le.until.Before(next) {
			next = le.until
		}
		e = nx
	}
	l.nextFree = next
}

// Success resets id: its counts and lockouts from every source that the
// table remembers for it from src, and its identity-wide count. Call it
// only when the peer proved the credential completely (its Finished
// verified), never on a proof alone.
func (l *Lockout) Success(id string, src Source) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range [2]lockKey{{id: id, src: src}, {id: id, all: true}} {
		if e, ok := l.m[k]; ok {
			if e.Value.(*lockEntry).inLocked {
				l.locked.Remove(e)
			} else {
				l.unlocked.Remove(e)
			}
			delete(l.m, k)
		}
	}
}

// Len returns the entries tracked.
func (l *Lockout) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// Dropped returns how many failures were not recorded because the table
// was full of locked entries.
func (l *Lockout) Dropped() uint64 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}
