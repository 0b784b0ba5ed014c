package dta

import (
	"sync"
	"time"
)

// failLimiter slows down addresses whose handshakes keep failing: after
// freeFails failures within window, each new connection from the address
// waits base·2^(n−freeFails), at most maxDelay, before its handshake. It
// remembers at most maxEntries addresses (bounded memory): when full it
// forgets stale entries, then arbitrary ones.
type failLimiter struct {
	mu         sync.Mutex
	m          map[string]*failEntry
	now        func() time.Time
	freeFails  int
	base       time.Duration
	maxDelay   time.Duration
	window     time.Duration
	maxEntries int
}

type failEntry struct {
	fails int
	last  time.Time
}

func newFailLimiter(now func() time.Time) *failLimiter {
	return &failLimiter{
		m: make(map[string]*failEntry), now: now,
		freeFails: 3, base: 100 * time.Millisecond, maxDelay: 5 * time.Second,
		window: 10 * time.Minute, maxEntries: 10000,
	}
}

// delay returns how long a new connection from addr waits.
func (l *failLimiter) delay(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[addr]
	if e == nil {
		return 0
	}
	if l.now().Sub(e.last) > l.window {
		delete(l.m, addr)
		return 0
	}
	n := e.fails - l.freeFails
	if n <= 0 {
		return 0
	}
	d := l.base
	for i := 1; i < n && d < l.maxDelay; i++ {
		d *= 2
	}
	return min(d, l.maxDelay)
}

// fail records a failed handshake from addr.
func (l *failLimiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.m[addr]
	if e == nil {
		if len(l.m) >= l.maxEntries {
			l.evict(now)
		}
		e = &failEntry{}
		l.m[addr] = e
	}
	if now.Sub(e.last) > l.window {
		e.fails = 0
	}
	e.fails++
	e.last = now
}

// success forgets addr's failures.
func (l *failLimiter) success(addr string) {
	l.mu.Lock()
	delete(l.m, addr)
	l.mu.Unlock()
}

func (l *failLimiter) evict(now time.Time) {
	for k, e := range l.m {
		if now.Sub(e.last) > l.window {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) < l.maxEntries {
			break
		}
		delete(l.m, k)
	}
}

func (l *failLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
