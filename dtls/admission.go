package dtls

import (
	"context"
	"sync"
	"time"

	"github.com/milagro-go/milagro/internal/admission"
)

// ListenOptions bounds what a Listener holds for peers that have not yet
// authenticated, and what it spends on them. The zero value takes the
// defaults below.
type ListenOptions struct {
	// MaxHandshakes bounds the peers waiting for their cookie to come
	// back, and separately the peers in their handshake after it came
	// back (0: 1024 each). A new first ClientHello takes the place of the
	// oldest unproven peer when all are taken; a peer that returned its
	// cookie when all slots are taken takes one from the source holding
	// the most, or is dropped.
	MaxHandshakes int
	// MaxHandshakesPerSource bounds both per source: one IPv4 address or
	// one IPv6 /64 (0: 16); a source past it is dropped.
	MaxHandshakesPerSource int
	// CookieTimeout is how long a new peer has to return the server's
	// HelloVerifyRequest cookie before its state is dropped (0: 3s). A
	// peer that receives at its source address answers within one round
	// trip; a spoofed source never does.
	CookieTimeout time.Duration
	// FailureRate and FailureBurst size each source's budget of failed
	// proofs (handshakes that failed after the server derived a key: a
	// wrong P2P key, an unknown PSK identity, altered values): a source
	// that spent it is refused at its first ClientHello, and its
	// pairings wait behind those of sources with a whole budget (0: 5
	// per second, 20).
	FailureRate  float64
	FailureBurst int
	// PairingWorkers bounds the Milagro P2P pairings computed at once
	// (0: GOMAXPROCS).
	PairingWorkers int
	// Backlog bounds the connections waiting for Accept (0: 128).
	Backlog int
	// Now is the clock of the failure budgets (time.Now when nil).
	Now func() time.Time
}

func (o ListenOptions) withDefaults() ListenOptions {
	if o.MaxHandshakes <= 0 {
		o.MaxHandshakes = admission.DefaultSlots
	}
	if o.MaxHandshakesPerSource <= 0 {
		o.MaxHandshakesPerSource = 16
	}
	if o.CookieTimeout <= 0 {
		o.CookieTimeout = 3 * time.Second
	}
	if o.Backlog <= 0 {
		o.Backlog = 128
	}
	return o
}

// guards are a Listener's admission controls, from internal/admission:
// handshake slots shared fairly between sources, a failed-proof budget
// per source, and the pairing gate.
type guards struct {
	keyer  admission.Keyer
	slots  *admission.Slots
	budget *admission.Budget
	gate   *admission.Gate
}

func newGuards(o ListenOptions) *guards {
	clock := admission.Clock(o.Now)
	b := &admission.Budget{Rate: o.FailureRate, Burst: o.FailureBurst, Clock: clock}
	return &guards{
		slots:  &admission.Slots{Max: o.MaxHandshakes, PerSource: o.MaxHandshakesPerSource, Clock: clock},
		budget: b,
		gate:   &admission.Gate{Workers: o.PairingWorkers, Budget: b},
	}
}

// peerAdmission is what one peer holds until its handshake ends.
type peerAdmission struct {
	src      admission.Source
	once     sync.Once
	slot     *admission.Slot
	inFlight func() // the budget's count of this source's handshakes
}

// admit takes a handshake slot for a peer from src that returned its
// cookie; evict is called if a busier source's handshake must give its
// slot up later.
func (g *guards) admit(src admission.Source, evict func()) (*peerAdmission, bool) {
	inFlight, ok := g.budget.Admit(src)
	if !ok {
		return nil, false
	}
	slot, ok := g.slots.Acquire(src, evict)
	if !ok {
		inFlight()
		return nil, false
	}
	return &peerAdmission{src: src, slot: slot, inFlight: inFlight}, true
}

// end returns the peer's slot once its handshake ended; a failed proof
// is charged to its source.
func (g *guards) end(pa *peerAdmission, failedProof bool) {
	pa.once.Do(func() {
		pa.slot.Release()
		pa.inFlight()
		if failedProof {
			g.budget.Charge(pa.src)
		}
	})
}

// pairing waits for the pairing gate's turn for the peer's source.
func (g *guards) pairing(ctx context.Context, pa *peerAdmission) (func(), error) {
	release, err := g.gate.Acquire(ctx, pa.src)
	if err != nil {
		return nil, err
	}
	// The outcome of the proof is known only when the handshake ends,
	// where end charges a failure; the gate's turn ends with the pairing.
	return func() { release(true) }, nil
}
