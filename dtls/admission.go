package dtls

import (
	"net/netip"
	"sync"
	"time"
)

// ListenOptions bounds what a Listener holds for peers that have not yet
// authenticated. The zero value takes the defaults below.
type ListenOptions struct {
	// MaxHandshakes bounds the peers in their handshake at once, counted
	// from their first ClientHello (0: 1024). A ClientHello beyond it is
	// dropped without creating anything.
	MaxHandshakes int
	// MaxHandshakesPerSource bounds them per source: one IPv4 address or
	// one IPv6 /64 (0: 16).
	MaxHandshakesPerSource int
	// CookieTimeout is how long a new peer has to return the server's
	// HelloVerifyRequest cookie before its state is dropped (0: 3s). A
	// peer that answers from its real address does so within one round
	// trip; a spoofed source never does.
	CookieTimeout time.Duration
	// FailedProofs is how many handshakes from one source may fail after
	// the server derived a key (a wrong P2P key, an unknown PSK
	// identity, a tampered Finished) within FailureWindow before new
	// handshakes from that source are dropped until the window ends
	// (0: 16; negative: no budget).
	FailedProofs int
	// FailureWindow is the period of the failed-proof budget (0: 1 min).
	FailureWindow time.Duration
	// Backlog bounds the connections waiting for Accept (0: 128).
	Backlog int
	// Now is the clock of the failed-proof budget (time.Now when nil).
	Now func() time.Time
}

func (o ListenOptions) withDefaults() ListenOptions {
	if o.MaxHandshakes <= 0 {
		o.MaxHandshakes = 1024
	}
	if o.MaxHandshakesPerSource <= 0 {
		o.MaxHandshakesPerSource = 16
	}
	if o.CookieTimeout <= 0 {
		o.CookieTimeout = 3 * time.Second
	}
	if o.FailedProofs == 0 {
		o.FailedProofs = 16
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = time.Minute
	}
	if o.Backlog <= 0 {
		o.Backlog = 128
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// sourceKey is the unit a source is limited by: an IPv4 address, or the
// /64 an IPv6 address belongs to (one host usually holds a whole /64).
func sourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// admitter is the listener's admission policy: handshake slots in total
// and per source, and a per-source budget of failed proofs. It holds state
// only for sources with a handshake in progress or recent failures, and
// both are bounded.
type admitter struct {
	opt ListenOptions

	mu       sync.Mutex
	total    int
	perSrc   map[netip.Prefix]int
	failures map[netip.Prefix]*budget
}

type budget struct {
	start time.Time
	n     int
}

// maxBudgets bounds the failure records kept; beyond it the oldest is
// forgotten (an attacker spreading failures over many sources gains
// nothing the per-source handshake limit does not already bound).
const maxBudgets = 4096

func newAdmitter(opt ListenOptions) *admitter {
	return &admitter{opt: opt, perSrc: make(map[netip.Prefix]int), failures: make(map[netip.Prefix]*budget)}
}

// refusal reasons, for the listener's counters.
const (
	admitOK = iota
	admitFull
	admitSourceFull
	admitBudget
)

// admit takes a handshake slot for src, or says why not.
func (a *admitter) admit(src netip.Prefix) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.failures[src]; b != nil && a.opt.FailedProofs > 0 {
		if a.opt.Now().Sub(b.start) >= a.opt.FailureWindow {
			delete(a.failures, src)
		} else if b.n >= a.opt.FailedProofs {
			return admitBudget
		}
	}
	if a.total >= a.opt.MaxHandshakes {
		return admitFull
	}
	if a.perSrc[src] >= a.opt.MaxHandshakesPerSource {
		return admitSourceFull
	}
	a.total++
	a.perSrc[src]++
	return admitOK
}

// release returns a slot taken by admit; failedProof counts a handshake
// that failed after the server derived a key against src's budget.
func (a *admitter) release(src netip.Prefix, failedProof bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if a.perSrc[src]--; a.perSrc[src] <= 0 {
		delete(a.perSrc, src)
	}
	if !failedProof || a.opt.FailedProofs < 0 {
		return
	}
	now := a.opt.Now()
	b := a.failures[src]
	if b == nil || now.Sub(b.start) >= a.opt.FailureWindow {
		if b == nil && len(a.failures) >= maxBudgets {
			a.forgetOldest(now)
		}
		b = &budget{start: now}
		a.failures[src] = b
	}
	b.n++
}

// forgetOldest drops expired budgets, or the oldest one if none expired.
func (a *admitter) forgetOldest(now time.Time) {
	var oldest netip.Prefix
	var at time.Time
	for k, b := range a.failures {
		if now.Sub(b.start) >= a.opt.FailureWindow {
			delete(a.failures, k)
			continue
		}
		if at.IsZero() || b.start.Before(at) {
			oldest, at = k, b.start
		}
	}
	if len(a.failures) >= maxBudgets {
		delete(a.failures, oldest)
	}
}

// inProgress reports the handshake slots taken.
func (a *admitter) inProgress() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}
