package admission

import (
	"container/list"
	"sync"
	"time"
)

// Budget defaults.
const (
	DefaultFailureRate  = 5.0 // refusals refilled per second per source
	DefaultFailureBurst = 20
	DefaultMaxSources   = 65536
	// DefaultCleanAfter is how long after its last refusal a source with a
	// whole budget counts as clean again.
	DefaultCleanAfter = time.Minute
)

// Budget is a token bucket of refusals per source: every refusal charged
// to a source (a failed proof, a replayed hello, a hello refused by a
// lockout) spends one token; tokens refill at Rate per second up to Burst.
// A clean source (a whole budget and no refusal for CleanAfter) is always
// admitted; any other may have no more connections in flight than whole
// tokens left, so a flooding source is refused at accept, before any
// parsing — and stays so across the pauses a tarpit imposes on it.
//
// Memory is bounded: at most MaxSources sources are remembered (the least
// recently seen idle one is forgotten, which only forgives it).
type Budget struct {
	Rate       float64 // 0 means DefaultFailureRate
	Burst      int     // 0 means DefaultFailureBurst
	MaxSources int     // 0 means DefaultMaxSources
	// CleanAfter is how long after its last refusal a source with a whole
	// budget is clean again; 0 means DefaultCleanAfter.
	CleanAfter time.Duration
	Clock      Clock

	mu  sync.Mutex
	m   map[Source]*list.Element // of *budgetEntry
	lru list.List                // most recently seen at the front
}

type budgetEntry struct {
	src      Source
	tokens   float64
	last     int64 // unix nanos of the last refill
	charged  int64 // unix nanos of the last refusal (0: none)
	admitted int   // connections admitted and not yet released
	busy     int   // other holders (gate waiters) that pin the entry
}

func (b *Budget) burst() float64 {
	if b.Burst > 0 {
		return float64(b.Burst)
	}
	return DefaultFailureBurst
}

func (b *Budget) rate() float64 {
	if b.Rate > 0 {
		return b.Rate
	}
	return DefaultFailureRate
}

// entry returns src's entry refilled to now, creating it (b.mu held).
func (b *Budget) entry(src Source) *budgetEntry {
	now := b.Clock.Now().UnixNano()
	if b.m == nil {
		b.m = make(map[Source]*list.Element)
	}
	if e, ok := b.m[src]; ok {
		b.lru.MoveToFront(e)
		be := e.Value.(*budgetEntry)
		if d := now - be.last; d > 0 {
			be.tokens += float64(d) / 1e9 * b.rate()
			if bu := b.burst(); be.tokens > bu {
				be.tokens = bu
			}
			be.last = now
		}
		return be
	}
	max := b.MaxSources
	if max <= 0 {
		max = DefaultMaxSources
	}
	for e := b.lru.Back(); e != nil && b.lru.Len() >= max; {
		prev := e.Prev()
		if be := e.Value.(*budgetEntry); be.admitted == 0 && be.busy == 0 {
			b.lru.Remove(e)
			delete(b.m, be.src)
		}
		e = prev
	}
	be := &budgetEntry{src: src, tokens: b.burst(), last: now}
	b.m[src] = b.lru.PushFront(be)
	return be
}

// Charge spends one token of src's budget.
func (b *Budget) Charge(src Source) {
	b.mu.Lock()
	be := b.entry(src)
	be.charged = be.last
	be.tokens--
	if be.tokens < 0 {
		be.tokens = 0
	}
	b.mu.Unlock()
}

// Spent reports whether src has less than one token left.
func (b *Budget) Spent(src Source) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entry(src).tokens < 1
}

// Clean reports whether src's budget is whole and it had no refusal for
// CleanAfter.
func (b *Budget) Clean(src Source) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clean(b.entry(src))
}

func (b *Budget) clean(be *budgetEntry) bool {
	after := b.CleanAfter
	if after <= 0 {
		after = DefaultCleanAfter
	}
	return be.tokens >= b.burst() && (be.charged == 0 || be.last-be.charged >= int64(after))
}

// Left returns the tokens src has left.
func (b *Budget) Left(src Source) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entry(src).tokens
}

// Admissible reports whether Admit would admit a connection from src now,
// without admitting one: for work done before Admit (a cookie round).
func (b *Budget) Admissible(src Source) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	be := b.entry(src)
	return b.clean(be) || be.tokens-float64(be.admitted) >= 1
}

// Admit admits a new connection from src before its handshake, or refuses
// it (ok false) when src was charged and has no more whole tokens than
// connections in flight. release must be called once when the admitted
// connection's handshake ends.
func (b *Budget) Admit(src Source) (release func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	be := b.entry(src)
	if !b.clean(be) && be.tokens-float64(be.admitted) < 1 {
		return nil, false
	}
	be.admitted++
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			be.admitted--
			b.mu.Unlock()
		})
	}, true
}

// pin keeps src's entry from being forgotten until unpin (b.mu not held).
func (b *Budget) pin(src Source) *budgetEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	be := b.entry(src)
	be.busy++
	return be
}

func (b *Budget) unpin(be *budgetEntry) {
	b.mu.Lock()
	be.busy--
	b.mu.Unlock()
}

// Len returns the number of sources remembered.
func (b *Budget) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len()
}
