package ciphersuite

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
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
	// ServerName is the SNI host name of the handshake ("" without SNI):
	// a session is resumed only under the name it was made for.
	ServerName string
	// Binding is the session's credential binding (SessionBinding at the
	// full handshake), carried in its ticket.
	Binding []byte
	// Hello is the resuming ClientHello (on resumption only).
	Hello *ClientHelloInfo
}

// SessionBinding returns the fingerprint that binds a session to the
// credential that authenticated its full handshake, computed from what
// this server holds now: for PSK a hash of the client identity and its
// key; for Milagro CS the fingerprint of the server key for the session's
// id_S (which covers the key, id_S and the D-TA set it was combined from);
// for Milagro P2P the fingerprint of the server's own key. The session's
// SNI name and the configuration's TicketScope are bound too. It is stored
// in the session's ticket; CheckResumption recomputes it and resumes only
// when both agree, so a rotated key, another tenant's key, another D-TA
// deployment's key or another server identity means a full handshake.
func (c *ServerConfig) SessionBinding(s *ResumedSession) ([]byte, error) {
	if c == nil || s == nil {
		return nil, errors.New("no server configuration or session")
	}
	h := sha256.New()
	put := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte("MTLS1-session-binding"))
	put([]byte{byte(s.Kind)})
	switch s.Kind {
	case KXPSK, KXECDHEPSK:
		if c.PSK == nil {
			return nil, errors.New("PSK suites are not configured")
		}
		key, err := c.PSK([]byte(s.PeerIdentity))
		if err != nil {
			return nil, fmt.Errorf("PSK identity not known: %w", err)
		}
		put([]byte(s.PeerIdentity))
		kh := sha256.Sum256(key) // the key enters only through its hash
		put(kh[:])
	case KXMilagroCS:
		var srv *pairing.CSServer
		if c.CS != nil {
			srv = c.CS.server(s.LocalIdentity)
		}
		if srv == nil {
			return nil, fmt.Errorf("no CS server key for server identity %q", s.LocalIdentity)
		}
		fp := srv.KeyFingerprint()
		put([]byte(s.LocalIdentity))
		put(fp[:])
	case KXMilagroP2P:
		if c.P2P == nil || c.P2P.Server == nil || c.P2P.Server.ID() != s.LocalIdentity {
			return nil, fmt.Errorf("no P2P key for server identity %q", s.LocalIdentity)
		}
		fp := c.P2P.Server.KeyFingerprint()
		put([]byte(s.LocalIdentity))
		put(fp[:])
	default:
		return nil, fmt.Errorf("unknown key exchange kind %d", s.Kind)
	}
	put([]byte(s.ServerName))
	put(c.TicketScope)
	return h.Sum(nil), nil
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
// same policy with its usual alerts). The session's binding must equal
// SessionBinding computed now, and a Milagro CS ClientHello must ask for
// the session's id_S. It costs no pairing.
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
		if cs.Guard != nil && cs.Guard.Locked(s.PeerIdentity) {
			return fmt.Errorf("CS client %q is locked out", s.PeerIdentity)
		}
		if s.Hello == nil {
			return errors.New("no ClientHello to check the CS server identity against")
		}
		asked, err := csServerIDAsked(s.Hello)
		if err != nil {
			return err
		}
		if asked != s.LocalIdentity {
			return fmt.Errorf("the client asks for server identity %q, the session is for %q", asked, s.LocalIdentity)
		}
	case KXMilagroP2P:
		if c.P2P == nil || c.P2P.Server == nil || c.P2P.Server.ID() != s.LocalIdentity {
			return fmt.Errorf("no P2P key for server identity %q any more", s.LocalIdentity)
		}
	default:
		return fmt.Errorf("unknown key exchange kind %d", s.Kind)
	}
	want, err := c.SessionBinding(s)
	if err != nil {
		return err
	}
	if len(s.Binding) != len(want) || subtle.ConstantTimeCompare(s.Binding, want) != 1 {
		return errors.New("the credential, server name or configuration that issued the session changed")
	}
	if v := c.VerifyPeerIdentity; v != nil {
		if err := v(s.PeerIdentity); err != nil {
			return fmt.Errorf("identity %q denied: %w", s.PeerIdentity, err)
		}
	}
	return nil
}

// csServerIDAsked is the server identity a Milagro CS ClientHello asks
// for: in its milagro_cs proof (a full offer) or, in a resumption-only
// hello, its milagro_cs_resume extension.
func csServerIDAsked(hello *ClientHelloInfo) (string, error) {
	if data, ok := hello.Extensions[ExtMilagroCS]; ok {
		h, err := parseCSHello(data)
		if err != nil {
			return "", fmt.Errorf("milagro_cs extension: %w", err)
		}
		return h.ServerID, nil
	}
	if data, ok := hello.Extensions[ExtMilagroCSResume]; ok {
		id, err := ParseCSResumeHello(data)
		if err != nil {
			return "", fmt.Errorf("milagro_cs_resume extension: %w", err)
		}
		return id, nil
	}
	return "", errors.New("the ClientHello has no milagro_cs (nor milagro_cs_resume) extension")
}
