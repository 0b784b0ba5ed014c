package ciphersuite

import (
	"container/list"
	"context"
	"runtime"
	"sync"
	"time"
)

// FairGate is the PairingGate of this module: at most Workers pairing jobs
// run at once; waiting jobs are served round-robin across sources, so a
// source with hundreds of hellos in flight gets one turn like a source with
// one; each source may queue at most MaxQueue jobs; and each source has a
// budget of failed proofs (a token bucket: FailureBurst, refilled at
// FailureRate per second) — a source that spent it is refused before any
// pairing until it refills. Clients whose proofs verify never spend it, so
// a busy legitimate source is only queued, never refused for its rate.
//
// It is safe for concurrent use and its memory is bounded (MaxSources
// sources tracked; the least recently seen is forgotten).
type FairGate struct {
	Workers      int     // concurrent jobs; 0 means GOMAXPROCS
	MaxQueue     int     // waiting jobs per source; 0 means 1024
	FailureRate  float64 // failed proofs per second per source; 0 means 5
	FailureBurst int     // 0 means 20
	MaxSources   int     // 0 means 65536
	// Time returns the current time; nil means time.Now.
	Time func() time.Time

	mu      sync.Mutex
	active  int
	sources map[string]*list.Element // of *gateSource
	lru     list.List                // most recently seen at the front
	ring    list.List                // sources with waiters, in turn order
}

type gateSource struct {
	key      string
	admitted int // connections admitted by Admit whose handshake has not ended
	tokens   float64
	last     time.Time
	waiters  list.List // of chan struct{}
	inRing   *list.Element
}

func (g *FairGate) now() time.Time {
	if g.Time != nil {
		return g.Time()
	}
	return time.Now()
}

func (g *FairGate) workers() int {
	if g.Workers > 0 {
		return g.Workers
	}
	return runtime.GOMAXPROCS(0)
}

func (g *FairGate) burst() float64 {
	if g.FailureBurst > 0 {
		return float64(g.FailureBurst)
	}
	return 20
}

func (g *FairGate) rate() float64 {
	if g.FailureRate > 0 {
		return g.FailureRate
	}
	return 5
}

// source returns the state of key, refilled to now (g.mu held).
func (g *FairGate) source(key string, now time.Time) *gateSource {
	if g.sources == nil {
		g.sources = make(map[string]*list.Element)
	}
	if e, ok := g.sources[key]; ok {
		g.lru.MoveToFront(e)
		s := e.Value.(*gateSource)
		if el := now.Sub(s.last).Seconds(); el > 0 {
			s.tokens += el * g.rate()
			if b := g.burst(); s.tokens > b {
				s.tokens = b
			}
			s.last = now
		}
		return s
	}
	max := g.MaxSources
	if max <= 0 {
		max = 65536
	}
	// Forget idle sources (never one with waiters) to stay bounded.
	for e := g.lru.Back(); e != nil && g.lru.Len() >= max; {
		prev := e.Prev()
		if s := e.Value.(*gateSource); s.waiters.Len() == 0 && s.admitted == 0 {
			g.lru.Remove(e)
			delete(g.sources, s.key)
		}
		e = prev
	}
	s := &gateSource{key: key, tokens: g.burst(), last: now}
	g.sources[key] = g.lru.PushFront(s)
	return s
}

// Acquire implements PairingGate.
func (g *FairGate) Acquire(ctx context.Context, source string) (func(bool), error) {
	g.mu.Lock()
	s := g.source(source, g.now())
	if s.tokens < 1 {
		g.mu.Unlock()
		return nil, ErrBusy
	}
	if g.active < g.workers() && g.ring.Len() == 0 {
		g.active++
		g.mu.Unlock()
		return g.releaser(source), nil
	}
	maxQ := g.MaxQueue
	if maxQ <= 0 {
		maxQ = 1024
	}
	if s.waiters.Len() >= maxQ {
		g.mu.Unlock()
		return nil, ErrBusy
	}
	ch := make(chan struct{})
	w := s.waiters.PushBack(ch)
	if s.inRing == nil {
		s.inRing = g.ring.PushBack(s)
	}
	g.mu.Unlock()

	select {
	case <-ch:
		return g.releaser(source), nil
	case <-ctx.Done():
		g.mu.Lock()
		select {
		case <-ch: // granted meanwhile: hand the slot on
			g.mu.Unlock()
			g.release(source, true)
		default:
			s.waiters.Remove(w)
			if s.waiters.Len() == 0 && s.inRing != nil {
				g.ring.Remove(s.inRing)
				s.inRing = nil
			}
			g.mu.Unlock()
		}
		return nil, ctx.Err()
	}
}

func (g *FairGate) releaser(source string) func(bool) {
	var once sync.Once
	return func(verified bool) { once.Do(func() { g.release(source, verified) }) }
}

// release ends one job of source and grants the slot to the next source in
// turn.
func (g *FairGate) release(source string, verified bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !verified {
		if e, ok := g.sources[source]; ok {
			s := e.Value.(*gateSource)
			s.tokens--
			if s.tokens < 0 {
				s.tokens = 0
			}
		}
	}
	front := g.ring.Front()
	if front == nil {
		g.active--
		return
	}
	s := front.Value.(*gateSource)
	w := s.waiters.Front()
	s.waiters.Remove(w)
	if s.waiters.Len() == 0 {
		g.ring.Remove(front)
		s.inRing = nil
	} else {
		g.ring.MoveToBack(front)
	}
	close(w.Value.(chan struct{})) // the slot passes to the waiter: active is unchanged
}

// Admit admits a new connection from source before its handshake. A
// source with its whole budget of failed proofs left (no recent failure)
// is always admitted; one whose proofs failed may have no more admitted
// connections in flight than whole tokens left, so a flooding source is
// refused at accept, before any parsing. release must be called once when
// the admitted connection's handshake ends.
func (g *FairGate) Admit(source string) (release func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.source(source, g.now())
	if s.tokens < g.burst() && s.tokens-float64(s.admitted) < 1 {
		return nil, false
	}
	s.admitted++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			s.admitted--
			g.mu.Unlock()
		})
	}, true
}

// Stats returns the jobs running and waiting.
func (g *FairGate) Stats() (running, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for e := g.ring.Front(); e != nil; e = e.Next() {
		waiting += e.Value.(*gateSource).waiters.Len()
	}
	return g.active, waiting
}
