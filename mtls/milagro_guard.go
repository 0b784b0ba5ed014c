package mtls

import (
	"context"
	"fmt"
	"net"
	"weak"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/pairing"
)

// Server side of Milagro CS: which key answers which server identity, and
// the guards that run before any pairing (lockout, replay cache, pairing
// gate; see ciphersuite/guard.go).

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

// serverGuards is what a Config (and its Clones) share of the CS guards
// when the application set none: made on first use.
type serverGuards struct {
	lockout *ciphersuite.Lockout
	replay  *ciphersuite.ReplayCache
	gate    *ciphersuite.FairGate
}

func (h *milagroPrepared) guards() *serverGuards {
	h.guardsOnce.Do(func() {
		h.serverGuards = &serverGuards{
			lockout: ciphersuite.NewLockout(),
			replay:  ciphersuite.NewReplayCache(),
			gate:    &ciphersuite.FairGate{},
		}
	})
	return h.serverGuards
}

// milagroServerGuards fills in the CS guards of kx (if it has a CS server)
// for one connection from source: c's own settings, else the defaults of
// parent (the Config the connection was accepted with; c itself unless
// GetConfigForClient returned c).
func (c *Config) milagroServerGuards(kx *ciphersuite.ServerConfig, parent *Config, ctx context.Context, source string) {
	if kx == nil || kx.CS == nil {
		return
	}
	def := parent.milagroHolder().guards()
	cs := kx.CS
	switch {
	case c.DisableCSLockout:
	case c.CSLockout != nil:
		cs.Lockout = c.CSLockout
	case parent.CSLockout != nil && !parent.DisableCSLockout:
		cs.Lockout = parent.CSLockout
	default:
		cs.Lockout = def.lockout
	}
	cs.Replay = def.replay
	switch {
	case c.PairingGate != nil:
		cs.Gate = c.PairingGate
	case parent.PairingGate != nil:
		cs.Gate = parent.PairingGate
	default:
		cs.Gate = def.gate
	}
	cs.Source, cs.Context = source, ctx
	if l := c.Logger; l != nil {
		cs.OnDenied = func(id, reason string) {
			l.Debug("mtls: Milagro CS hello refused", "id", id, "reason", reason, "source", source)
		}
	}
}

// sourceOf names a client for the pairing gate: its IP address (all ports
// of one address are one source).
func sourceOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// SourceAdmitter is implemented by a PairingGate that admits connections
// by source before their handshake (FairGate: a source whose proofs
// failed may have no more handshakes in progress than its remaining
// budget). Listeners close a refused connection at once, and call release
// when an admitted one's handshake ends.
type SourceAdmitter interface {
	Admit(source string) (release func(), ok bool)
}

// admitSource admits a new connection from source (a CS server whose gate
// admits by source), or refuses it before its handshake.
func (c *Config) admitSource(source string) (func(), bool) {
	if c == nil || (len(c.CSServerKeys) == 0 && c.GetCSServerKey == nil) {
		return nil, true
	}
	g := c.PairingGate
	if g == nil {
		g = c.milagroHolder().guards().gate
	}
	if a, ok := g.(SourceAdmitter); ok {
		return a.Admit(source)
	}
	return nil, true
}
