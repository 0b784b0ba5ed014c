package ciphersuite

import (
	"errors"
	"fmt"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

// ResumedSession is what a server knows of a session it is asked to resume
// (from a session ticket): the key exchange kind, the client identity the
// full handshake authenticated, the identity the server presented (CS id_S,
// P2P id_S, or the PSK hint) and the CS permit day (0: none).
type ResumedSession struct {
	Kind          KXKind
	PeerIdentity  string
	LocalIdentity string
	PermitDay     uint64
}

// CheckResumption re-applies the server's current credentials and policy
// to a session before it is resumed instead of trusting the ticket: the
// credentials for its kind must still be configured (the PSK for the
// client's identity, the CS key for its server identity, the P2P key with
// its identity), VerifyPeerIdentity must still admit the client, a CS
// client must not be locked out, and when the server's permit policy
// requires permits the session's permit day must still be acceptable at
// now (so a revoked identity, which gets no new permit, cannot ride a
// ticket past the day of its last one). A nil error means the session may
// be resumed; any error means a full handshake (which then applies the
// same policy with its usual alerts). It costs no pairing.
func (c *ServerConfig) CheckResumption(s *ResumedSession, now time.Time) error {
	if c == nil || s == nil {
		return errors.New("no server configuration or session")
	}
	switch s.Kind {
	case KXPSK, KXECDHEPSK:
		if c.PSK == nil {
			return errors.New("PSK suites are no longer configured")
		}
		if _, err := c.PSK([]byte(s.PeerIdentity)); err != nil {
			return fmt.Errorf("PSK identity no longer known: %w", err)
		}
	case KXMilagroCS:
		cs := c.CS
		if cs == nil || cs.server(s.LocalIdentity) == nil {
			return fmt.Errorf("no CS server key for server identity %q any more", s.LocalIdentity)
		}
		if err := pairing.CheckPermitDay(now, s.PermitDay, cs.skew(), cs.Permits); err != nil {
			return fmt.Errorf("permit day %d no longer acceptable: %w", s.PermitDay, err)
		}
		if locked, _ := cs.Lockout.Locked(s.PeerIdentity, now); locked {
			return fmt.Errorf("CS client %q is locked out", s.PeerIdentity)
		}
	case KXMilagroP2P:
		if c.P2P == nil || c.P2P.Server == nil || c.P2P.Server.ID() != s.LocalIdentity {
			return fmt.Errorf("no P2P key for server identity %q any more", s.LocalIdentity)
		}
	default:
		return fmt.Errorf("unknown key exchange kind %d", s.Kind)
	}
	if v := c.VerifyPeerIdentity; v != nil {
		if err := v(s.PeerIdentity); err != nil {
			return fmt.Errorf("identity %q denied: %w", s.PeerIdentity, err)
		}
	}
	return nil
}
