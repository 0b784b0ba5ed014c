package admission

import (
	"container/list"
	"io"
	"sync"
	"time"
)

// Tarpit defaults: hold a refused connection 5 s; at most 1024 per source
// and 8192 in all.
const (
	DefaultHold         = 5 * time.Second
	DefaultPitPerSource = 1024
	DefaultPitMax       = 8192
)

// Pit holds refused connections open for Hold before closing them, so a
// flooding source waits with its connections held instead of reconnecting
// at once: a source with N connections in flight is slowed to about N per
// Hold, for one descriptor per held connection and no goroutine each. It
// is sized per source (PerSource, beyond a flooder's concurrency) and in
// all (Max). When a source has PerSource held, its oldest is closed; when
// the pit is full, the oldest of the source holding the most is closed.
type Pit struct {
	Hold      time.Duration // 0 means DefaultHold
	PerSource int           // 0 means DefaultPitPerSource
	Max       int           // 0 means DefaultPitMax
	Clock     Clock
	// Tick is the interval at which held connections are checked; 0 means
	// 100 ms. Tests with a fake clock call Expire instead.
	Tick time.Duration

	mu      sync.Mutex
	all     list.List // of *pitEntry, by hold end
	per     map[Source]*list.List
	running bool
}

type pitEntry struct {
	c     io.Closer
	src   Source
	until time.Time
	inAll *list.Element
	inSrc *list.Element
}

// Add takes c, refused from src: it is closed after the hold.
func (p *Pit) Add(src Source, c io.Closer) {
	hold, perMax, max := p.Hold, p.PerSource, p.Max
	if hold <= 0 {
		hold = DefaultHold
	}
	if perMax <= 0 {
		perMax = DefaultPitPerSource
	}
	if max <= 0 {
		max = DefaultPitMax
	}
	var drop *pitEntry
	p.mu.Lock()
	if p.per == nil {
		p.per = make(map[Source]*list.List)
	}
	mine := p.per[src]
	if mine != nil && mine.Len() >= perMax {
		drop = mine.Front().Value.(*pitEntry)
	} else if p.all.Len() >= max {
		var big *list.List
		for _, l := range p.per {
			if big == nil || l.Len() > big.Len() {
				big = l
			}
		}
		drop = big.Front().Value.(*pitEntry)
	}
	if drop != nil {
		p.remove(drop)
	}
	if mine = p.per[src]; mine == nil {
		mine = list.New()
		p.per[src] = mine
	}
	e := &pitEntry{c: c, src: src, until: p.Clock.Now().Add(hold)}
	e.inAll = p.all.PushBack(e)
	e.inSrc = mine.PushBack(e)
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if drop != nil {
		drop.c.Close()
	}
	if start {
		go p.drain()
	}
}

func (p *Pit) remove(e *pitEntry) {
	p.all.Remove(e.inAll)
	l := p.per[e.src]
	l.Remove(e.inSrc)
	if l.Len() == 0 {
		delete(p.per, e.src)
	}
}

// Expire closes the connections whose hold ended and reports how many
// are still held.
func (p *Pit) Expire() int {
	now := p.Clock.Now()
	var done []*pitEntry
	p.mu.Lock()
	for e := p.all.Front(); e != nil; e = p.all.Front() {
		pe := e.Value.(*pitEntry)
		if now.Before(pe.until) {
			break
		}
		p.remove(pe)
		done = append(done, pe)
	}
	left := p.all.Len()
	p.mu.Unlock()
	for _, pe := range done {
		pe.c.Close()
	}
	return left
}

// drain runs Expire until the pit is empty.
func (p *Pit) drain() {
	tick := p.Tick
	if tick <= 0 {
		tick = 100 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for range t.C {
		if p.Expire() > 0 {
			continue
		}
		p.mu.Lock()
		if p.all.Len() == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// Len returns the connections held.
func (p *Pit) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all.Len()
}

// Held returns the connections held from src.
func (p *Pit) Held(src Source) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.per[src]; l != nil {
		return l.Len()
	}
	return 0
}
