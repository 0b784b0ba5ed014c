package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// Handshake admission: connections that have not completed their
// handshake are bounded on their own — in all and per source address — so
// that silent or slow connections cannot take the slots of the connections
// that are established (MaxConns counts only those), and one address cannot
// take every handshake slot.

const (
	defaultMaxHandshakes          = 1024
	defaultMaxHandshakesPerSource = 256
)

type hsLimiter struct {
	max, perSource int

	mu      sync.Mutex
	total   int
	sources map[string]int
}

// admit reserves a handshake slot for source; false means the connection
// must be closed at once (over the total or the per-source bound).
func (l *hsLimiter) admit(source string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sources == nil {
		l.sources = make(map[string]int)
	}
	if l.total >= l.max || l.sources[source] >= l.perSource {
		return false
	}
	l.total++
	l.sources[source]++
	return true
}

func (l *hsLimiter) release(source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.sources[source] - 1; n > 0 {
		l.sources[source] = n
	} else {
		delete(l.sources, source)
	}
}

// pending returns the handshakes in progress.
func (l *hsLimiter) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// rateLog lets through at most one log line per interval for a kind of
// event and counts the ones it held back, so a flood of forged hellos does
// not turn into a flood of log lines.
type rateLog struct {
	every      time.Duration
	last       atomic.Int64 // unix nanos of the last line let through
	suppressed atomic.Int64
}

// allow reports whether to log now, and how many were held back since the
// last line.
func (r *rateLog) allow(now time.Time) (bool, int64) {
	last := r.last.Load()
	if now.UnixNano()-last < int64(r.every) || !r.last.CompareAndSwap(last, now.UnixNano()) {
		r.suppressed.Add(1)
		return false, 0
	}
	return true, r.suppressed.Swap(0)
}
