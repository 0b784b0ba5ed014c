// Package tarpit holds refused connections open for a while before closing
// them, so that a client that floods a server with connections it refuses
// (an address whose Milagro CS proofs keep failing) waits instead of
// reconnecting at once: a flood with N connections in flight is slowed to
// about N per hold period, at the cost of one descriptor per held
// connection and no goroutine. The number held is bounded; beyond it a
// refused connection is closed at once.
package tarpit

import (
	"net"
	"sync"
	"time"
)

// Defaults: hold for a second, at most 512 connections.
const (
	DefaultHold = time.Second
	DefaultMax  = 512
)

// Pit holds refused connections. The zero value uses the defaults.
type Pit struct {
	Hold time.Duration
	Max  int

	mu      sync.Mutex
	held    []held
	running bool
}

type held struct {
	c     net.Conn
	until time.Time
}

// Add takes c: it is closed after the hold period, or at once if the pit
// is full.
func (p *Pit) Add(c net.Conn) {
	hold, max := p.Hold, p.Max
	if hold <= 0 {
		hold = DefaultHold
	}
	if max <= 0 {
		max = DefaultMax
	}
	p.mu.Lock()
	if len(p.held) >= max {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.held = append(p.held, held{c, time.Now().Add(hold)})
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.drain()
	}
}

// Len returns the connections held.
func (p *Pit) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// drain closes connections whose hold ended, until none is held.
func (p *Pit) drain() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		now := time.Now()
		p.mu.Lock()
		n := 0
		for n < len(p.held) && !now.Before(p.held[n].until) {
			n++
		}
		expired := append([]held(nil), p.held[:n]...)
		p.held = append(p.held[:0], p.held[n:]...)
		empty := len(p.held) == 0
		if empty {
			p.running = false
		}
		p.mu.Unlock()
		for _, h := range expired {
			h.c.Close()
		}
		if empty {
			return
		}
	}
}
