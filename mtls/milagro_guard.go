package mtls

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
	"weak"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/internal/admission"
	"github.com/milagro-go/milagro/pairing"
)

// Server side of Milagro CS and P2P: which key answers which server
// identity, and the guards that run before any pairing (failure budget,
// lockout, replay cache, pairing gate; package internal/admission), asked
// by the key exchanges through ciphersuite.HelloGuard.

// csServerLookup returns the function that finds the prepared server key
// for a server identity: GetCSServerKey if set, else
// CSServerKeys by their identities (two keys for one identity is an error).
func (c *Config) csServerLookup() (func(string) *pairing.CSServer, error) {
	prep := func(sec *pairing.CSServerSecret) (*pairing.CSServer, error) {
		v, err := preparedFor(prepKey{secret: weak.Make(sec)}, func() (any, error) {
			return pairing.NewCSServer(sec)
		})
		if err != nil {
			return nil, fmt.Errorf("mtls: CS server key for %q: %w", sec.ID(), err)
		}
		return v.(*pairing.CSServer), nil
	}
	if get := c.GetCSServerKey; get != nil {
		return func(id string) *pairing.CSServer {
			sec, err := get(id)
			if err != nil || sec == nil || sec.ID() != id {
				if err != nil && c.Logger != nil {
					c.Logger.Warn("mtls: GetCSServerKey failed", "server_id", id, "err", err)
				}
				return nil
			}
			s, err := prep(sec)
			if err != nil {
				if c.Logger != nil {
					c.Logger.Warn("mtls: CS server key unusable", "server_id", id, "err", err)
				}
				return nil
			}
			return s
		}, nil
	}
	keys := make(map[string]*pairing.CSServer)
	for _, sec := range c.CSServerKeys {
		if sec == nil {
			continue
		}
		if _, dup := keys[sec.ID()]; dup {
			return nil, fmt.Errorf("mtls: two CS server keys for server identity %q", sec.ID())
		}
		s, err := prep(sec)
		if err != nil {
			return nil, err
		}
		keys[sec.ID()] = s
	}
	return func(id string) *pairing.CSServer { return keys[id] }, nil
}

// defaultGuards returns the admission guards of c when it sets none: one
// set per Config, shared by its Clones and the Configs its
// GetConfigForClient returns, reading c's clock.
func (h *milagroPrepared) defaultGuards(clock func() time.Time) *Guards {
	h.guardsOnce.Do(func() { h.guards = admission.New(clock) })
	return h.guards
}

// guards returns the admission guards a server with Config c uses.
func (c *Config) guards() *Guards {
	if c.Guards != nil {
		return c.Guards
	}
	return c.milagroHolder().defaultGuards(c.time())
}

// source names a peer for the guards (an IPv4 address or an IPv6 prefix).
func (c *Config) source(a net.Addr) Source { return c.guards().Keyer.Addr(a) }

// milagroServerGuards gives the Milagro key exchanges of kx (CS and P2P)
// the guards of one connection from source: c's own settings, else those
// of parent (the Config the connection was accepted with; c itself unless
// GetConfigForClient returned c).
func (c *Config) milagroServerGuards(kx *ciphersuite.ServerConfig, parent *Config, ctx context.Context, source Source) {
	if kx == nil || (kx.CS == nil && kx.P2P == nil) {
		return
	}
	g := parent.guards()
	if c.Guards != nil {
		g = c.Guards
	}
	cg := &connGuard{ctx: ctx, src: source, g: g, gate: g.Gate}
	switch {
	case c.DisableCSLockout:
	case c.CSLockout != nil:
		cg.lockout = c.CSLockout
	case parent.CSLockout != nil && !parent.DisableCSLockout:
		cg.lockout = parent.CSLockout
	default:
		cg.lockout = g.Lockout
	}
	switch {
	case c.PairingGate != nil:
		cg.gate = c.PairingGate
	case parent.PairingGate != nil:
		cg.gate = parent.PairingGate
	}
	if gate, ok := cg.gate.(*admission.Gate); !ok || gate.Budget != g.Budget {
		cg.chargeOwn = true // the gate charges another budget, or none
	}
	if l := c.Logger; l != nil {
		cg.logger = l
	}
	if kx.CS != nil {
		kx.CS.Guard = cg
		if l := c.Logger; l != nil {
			kx.CS.OnDenied = func(id, reason string) {
				l.Debug("mtls: Milagro CS hello refused", "id", id, "reason", reason, "source", source.String())
			}
		}
	}
	if kx.P2P != nil {
		kx.P2P.Guard = cg
	}
}

// connGuard is the ciphersuite.HelloGuard of one server connection: it
// asks the admission guards in the order of spec §2 and §6 (a spent
// budget, a lockout, a replay: all cheap and charged to the source; then
// a turn at the pairing gate) and reports outcomes back.
type connGuard struct {
	ctx       context.Context
	src       Source
	g         *Guards
	lockout   *Lockout // nil: no lockout
	gate      PairingGate
	chargeOwn bool // charge g.Budget for unverified proofs (the gate does not)
	logger    *slog.Logger
}

// Admit implements ciphersuite.HelloGuard.
func (cg *connGuard) Admit(a *ciphersuite.HelloAttempt) (ciphersuite.Admission, error) {
	if cg.g.Budget.Spent(cg.src) {
		return nil, admission.ErrBusy
	}
	if a.Kind == ciphersuite.KXMilagroCS {
		if locked, until := cg.lockout.Locked(a.ID, cg.src); locked {
			cg.g.Budget.Charge(cg.src) // a flooder spends its budget on these too
			return nil, fmt.Errorf("%w: %s is %w until %s",
				ciphersuite.ErrDenied, quoteID(a.ID), ciphersuite.ErrLockedOut, until.UTC().Format(time.RFC3339))
		}
	}
	if a.Hello != nil && !cg.g.Replay.Reserve(a.Hello, a.Expiry) {
		cg.g.Budget.Charge(cg.src)
		return nil, fmt.Errorf("%w: %w (this exact milagro_cs proof was already used)", ciphersuite.ErrDenied, ciphersuite.ErrReplayed)
	}
	started := cg.lockout.Begin()
	release, err := cg.gate.Acquire(cg.ctx, cg.src)
	if err != nil {
		return nil, err
	}
	return &guardAttempt{cg: cg, kind: a.Kind, id: a.ID, started: started, release: release}, nil
}

// Locked implements ciphersuite.HelloGuard.
func (cg *connGuard) Locked(id string) bool {
	locked, _ := cg.lockout.Locked(id, cg.src)
	return locked
}

// guardAttempt is one admitted attempt (ciphersuite.Admission).
type guardAttempt struct {
	cg       *connGuard
	kind     ciphersuite.KXKind
	id       string
	started  admission.Attempt
	release  func(verified bool)
	proved   sync.Once
	finished sync.Once
}

// Proved ends the pairing: an unverified CS proof is a failure of the
// identity from this source (lockout) and of the source (budget).
func (a *guardAttempt) Proved(verified bool) {
	a.proved.Do(func() {
		a.release(verified)
		if verified {
			return
		}
		if a.cg.chargeOwn {
			a.cg.g.Budget.Charge(a.cg.src)
		}
		if a.kind == ciphersuite.KXMilagroCS && !a.cg.lockout.Failure(a.id, a.cg.src, a.started) && a.cg.logger != nil {
			a.cg.logger.Debug("mtls: lockout table full of locked identities; a failed proof was not counted (Lockout.Dropped counts them)",
				"id", a.id, "source", a.cg.src.String())
		}
	})
}

// Finished learns whether the client's Finished verified: only that is a
// success (it resets a CS identity's lockout); a wrong one is charged to
// the source (for P2P it is how a wrong key shows).
func (a *guardAttempt) Finished(ok bool) {
	a.finished.Do(func() {
		switch {
		case ok && a.kind == ciphersuite.KXMilagroCS:
			a.cg.lockout.Success(a.id, a.cg.src)
		case !ok:
			a.cg.g.Budget.Charge(a.cg.src)
		}
	})
}

func quoteID(id string) string {
	if len(id) > 64 {
		id = id[:64] + "…"
	}
	return fmt.Sprintf("%q", id)
}

// hasMilagroServer reports whether c holds Milagro server credentials
// (whose handshakes the listener admits by source).
func (c *Config) hasMilagroServer() bool {
	return c != nil && (len(c.CSServerKeys) > 0 || c.GetCSServerKey != nil || c.P2PKey != nil)
}

// admitSource admits a new connection from source before its handshake,
// or refuses it (its failure budget is spent beyond the connections it
// has in flight). release is called when the handshake ends.
func (c *Config) admitSource(source Source) (func(), bool) {
	if !c.hasMilagroServer() {
		return nil, true
	}
	return c.guards().Budget.Admit(source)
}
