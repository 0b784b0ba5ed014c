package proxy

import (
	"sync/atomic"
	"time"
)

// Handshake admission: connections that have not completed their
// handshake hold a slot (admission.Slots), bounded in all and per source
// (an IPv4 address or an IPv6 /64), so that silent or slow connections
// cannot take the slots of established connections (MaxConns counts only
// those). The slots are shared fairly: when all are taken, a new source
// takes one from the source holding the most (its oldest connection is
// closed), and a connection admitted while slots are scarce gets a short
// handshake deadline (HelloTimeout) instead of HandshakeTimeout.

const (
	defaultMaxHandshakes          = 1024
	defaultMaxHandshakesPerSource = 256
	// DefaultHelloTimeout bounds the handshake of a connection admitted
	// while more than three quarters of the handshake slots are taken.
	DefaultHelloTimeout = 2 * time.Second
)

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
