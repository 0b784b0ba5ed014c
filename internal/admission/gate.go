package admission

import (
	"container/list"
	"context"
	"errors"
	"runtime"
	"sync"
)

// ErrBusy is returned by a Gate that refuses work.
var ErrBusy = errors.New("server busy: too much handshake work from this source")

// DefaultMaxQueue is the waiting jobs per source of a Gate.
const DefaultMaxQueue = 1024

// Gate admits expensive handshake work (pairings): at most Workers jobs run
// at once; waiting jobs are served round-robin across sources, sources
// whose failure budget is whole before sources that were charged, so a
// flooding source waits behind legitimate ones; each source may queue at
// most MaxQueue jobs; and a source that spent its failure budget is
// refused before any work. A job that ends unverified charges its source.
type Gate struct {
	Workers  int // 0 means GOMAXPROCS
	MaxQueue int // 0 means DefaultMaxQueue
	// Budget is charged for unverified jobs and consulted before each
	// job; nil means a Budget of its own with the defaults.
	Budget *Budget

	initOnce sync.Once
	mu       sync.Mutex
	active   int
	queues   map[Source]*gateQueue
	clean    list.List // of *gateQueue: sources with a whole budget, in turn order
	charged  list.List // of *gateQueue: the others
}

type gateQueue struct {
	src     Source
	waiters list.List // of chan struct{}
	ring    *list.List
	elem    *list.Element
}

func (g *Gate) init() {
	g.initOnce.Do(func() {
		if g.Budget == nil {
			g.Budget = &Budget{}
		}
	})
}

func (g *Gate) workers() int {
	if g.Workers > 0 {
		return g.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// Acquire blocks until src's job may run and returns the function to call
// once when it is done, saying whether the peer's proof verified; an
// error means the job is refused (ErrBusy, or ctx ended).
func (g *Gate) Acquire(ctx context.Context, src Source) (release func(verified bool), err error) {
	g.init()
	if g.Budget.Spent(src) {
		return nil, ErrBusy
	}
	clean := g.Budget.Clean(src)
	g.mu.Lock()
	if g.active < g.workers() && g.clean.Len() == 0 && g.charged.Len() == 0 {
		g.active++
		g.mu.Unlock()
		return g.releaser(src), nil
	}
	if g.queues == nil {
		g.queues = make(map[Source]*gateQueue)
	}
	q := g.queues[src]
	if q == nil {
		q = &gateQueue{src: src}
		g.queues[src] = q
	}
	maxQ := g.MaxQueue
	if maxQ <= 0 {
		maxQ = DefaultMaxQueue
	}
	if q.waiters.Len() >= maxQ {
		g.mu.Unlock()
		return nil, ErrBusy
	}
	ch := make(chan struct{})
	w := q.waiters.PushBack(ch)
	if q.elem == nil {
		q.ring = &g.charged
		if clean {
			q.ring = &g.clean
		}
		q.elem = q.ring.PushBack(q)
	}
	g.mu.Unlock()

	select {
	case <-ch:
		return g.releaser(src), nil
	case <-ctx.Done():
		g.mu.Lock()
		select {
		case <-ch: // granted meanwhile: hand the slot on
			g.mu.Unlock()
			g.release(src, true)
		default:
			q.waiters.Remove(w)
			g.dropIfEmpty(q)
			g.mu.Unlock()
		}
		return nil, ctx.Err()
	}
}

func (g *Gate) dropIfEmpty(q *gateQueue) {
	if q.waiters.Len() == 0 {
		if q.elem != nil {
			q.ring.Remove(q.elem)
			q.elem, q.ring = nil, nil
		}
		delete(g.queues, q.src)
	}
}

func (g *Gate) releaser(src Source) func(bool) {
	var once sync.Once
	return func(verified bool) { once.Do(func() { g.release(src, verified) }) }
}

// release ends one job of src and passes the slot to the next waiter:
// clean sources first, round-robin within each ring.
func (g *Gate) release(src Source, verified bool) {
	if !verified {
		g.Budget.Charge(src)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	front := g.clean.Front()
	if front == nil {
		front = g.charged.Front()
	}
	if front == nil {
		g.active--
		return
	}
	q := front.Value.(*gateQueue)
	w := q.waiters.Front()
	q.waiters.Remove(w)
	if q.waiters.Len() == 0 {
		g.dropIfEmpty(q)
	} else {
		q.ring.MoveToBack(front)
	}
	close(w.Value.(chan struct{})) // the slot passes on: active is unchanged
}

// Stats returns the jobs running and waiting.
func (g *Gate) Stats() (running, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, q := range g.queues {
		waiting += q.waiters.Len()
	}
	return g.active, waiting
}
