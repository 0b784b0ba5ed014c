package handshake

import (
	"bytes"
	"errors"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// Client side of session tickets (RFC 5077) and the abbreviated handshake.

// ClientSession is a session the client may offer for resumption: the
// server's ticket and what the client needs to resume without the server
// repeating the key exchange (the master secret and the identities the
// full handshake authenticated).
type ClientSession struct {
	Ticket       []byte
	LifetimeHint uint32 // seconds; the server's hint (0: none given)
	Suite        uint16
	MasterSecret []byte
	EMS          bool
	// PeerIdentity is the server identity the full handshake proved (CS /
	// P2P id_S; empty for PSK); LocalIdentity the client's own.
	PeerIdentity    string
	LocalIdentity   string
	PSKIdentityHint string
	PermitDay       uint64
	// PostQuantum: the session's keys include an ML-KEM secret; a client
	// that requires the hybrid offers no other session.
	PostQuantum bool
	ReceivedAt  time.Time
}

// clientResume is the client handshake's ticket state.
type clientResume struct {
	offered   *ClientSession // the session offered (nil: none)
	resumed   bool
	expectNST bool // the ServerHello acknowledged session_ticket
	nst       *newSessionTicketMsg
}

// addTicketOffer adds session_ticket to the ClientHello: the session's
// ticket (with a fresh session_id, which the server echoes to resume) when
// one is offered whose suite is being offered, else empty to ask for a
// ticket. Only EMS sessions are offered (RFC 7627 §5.3).
func (hs *clientHandshake) addTicketOffer(m *clientHelloMsg) error {
	cfg := hs.cfg
	hs.res = &clientResume{}
	if s := cfg.Session; hs.sessionOfferable(s) {
		for _, o := range hs.offered {
			if o.ID == s.Suite {
				hs.res.offered = s
				break
			}
		}
	}
	switch {
	case hs.res.offered != nil:
		id, err := randomBytes(cfg.Rand, maxSessionIDLength)
		if err != nil {
			return err
		}
		m.sessionID = id
		m.extra = append(m.extra, ciphersuite.Extension{Type: extSessionTicket, Data: hs.res.offered.Ticket})
	case cfg.RequestTicket:
		m.extra = append(m.extra, ciphersuite.Extension{Type: extSessionTicket, Data: []byte{}})
	}
	return nil
}

// sessionOfferable reports whether session s may be offered at all: a
// well-formed EMS session (RFC 7627 §5.3), and a post-quantum hybrid one
// when the client requires the hybrid (a resumed session keeps the mode of
// its full handshake).
func (hs *clientHandshake) sessionOfferable(s *ClientSession) bool {
	return s != nil && len(s.Ticket) > 0 && len(s.Ticket) <= maxClientTicketLength &&
		s.EMS && len(s.MasterSecret) == masterSecretLength &&
		(s.PostQuantum || hs.cfg.KX.PQ != ciphersuite.PQRequire)
}

// ErrResumptionRefused marks a resumption-only ClientHello that the server
// did not resume: the server's handshake_failure (the client's error) or
// the error the server reports for it. The client's caller drops the
// session and reconnects once with a full offer.
var ErrResumptionRefused = errors.New("session ticket refused, and the ClientHello offered no full handshake")

// resumptionOnlySuite returns the suite of a resumption-only ClientHello
// (ClientConfig.ResumptionOnly), or nil for a full offer. Only Milagro CS
// sessions qualify: a server that refuses the ticket cannot choose a CS
// suite without the client's milagro_cs proof, so it must refuse the whole
// hello with handshake_failure before any ServerHello, and the client
// reconnects. A P2P or PSK suite needs nothing from the ClientHello, so a
// server could answer such a hello with a full handshake the client has
// not prepared; those sessions always come with the full offer (their
// offers cost the client little).
func (hs *clientHandshake) resumptionOnlySuite() *ciphersuite.Suite {
	s := hs.cfg.Session
	if !hs.cfg.ResumptionOnly || hs.cfg.KX.CS == nil || !hs.sessionOfferable(s) {
		return nil
	}
	for _, o := range hs.offered {
		if o.ID == s.Suite && o.KX == ciphersuite.KXMilagroCS {
			return o
		}
	}
	return nil
}

// refusedResumption marks err, the failure to read a ServerHello, as a
// refused resumption when the hello was resumption-only and the server
// answered it with a handshake_failure alert before any ServerHello. Any
// other failure stays what it was.
func (hs *clientHandshake) refusedResumption(err error) error {
	var ae *ciphersuite.AlertError
	if !hs.resumeOnly || hs.suite != nil || !errors.As(err, &ae) || !ae.Remote || ae.Alert != ciphersuite.AlertHandshakeFailure {
		return err
	}
	return &refusedError{err: err}
}

// refusedError is a refused resumption-only hello: errors.Is matches
// ErrResumptionRefused, and errors.As finds the server's alert.
type refusedError struct{ err error }

func (e *refusedError) Error() string {
	return e.err.Error() + " (" + ErrResumptionRefused.Error() + ")"
}
func (e *refusedError) Unwrap() []error { return []error{e.err, ErrResumptionRefused} }

// checkServerHelloTicket notes whether the server resumes the offered
// session (it echoed our session_id) and whether a NewSessionTicket follows.
func (hs *clientHandshake) checkServerHelloTicket(sh *serverHelloMsg) error {
	if hs.res == nil {
		return nil
	}
	for _, e := range sh.extra {
		if e.Type == extSessionTicket {
			if len(e.Data) != 0 {
				return decodeErr("ServerHello session_ticket extension (must be empty)")
			}
			hs.res.expectNST = true
		}
	}
	s := hs.res.offered
	if s == nil || len(sh.sessionID) == 0 || !bytes.Equal(sh.sessionID, hs.hello.sessionID) {
		return nil
	}
	hs.res.resumed = true
	if sh.cipherSuite != s.Suite {
		return ciphersuite.Errorf(ciphersuite.AlertIllegalParameter,
			"server resumed the session with cipher suite %#04x instead of the session's %#04x", sh.cipherSuite, s.Suite)
	}
	if sh.ems != s.EMS {
		return ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
			"server resumed a session that used extended_master_secret without it (RFC 7627 §5.3)")
	}
	return nil
}

// readNewTicket reads the NewSessionTicket the ServerHello announced.
func (hs *clientHandshake) readNewTicket() error {
	if hs.res == nil || !hs.res.expectNST {
		return nil
	}
	msg, typ, body, err := hs.readSkippingHelloRequest()
	if err != nil {
		return err
	}
	if typ != typeNewSessionTicket {
		return unexpected(typ, "NewSessionTicket")
	}
	m, err := parseNewSessionTicket(body)
	if err != nil {
		return err
	}
	hs.tr.write(msg)
	hs.res.nst = m
	return nil
}

// newSession is the session to keep after a handshake that ended in st,
// when the server issued a (non-empty) ticket.
func (hs *clientHandshake) newSession(st *State) *ClientSession {
	if hs.res == nil || hs.res.nst == nil || len(hs.res.nst.ticket) == 0 || !st.ExtendedMasterSecret {
		return nil
	}
	return &ClientSession{
		Ticket:          hs.res.nst.ticket,
		LifetimeHint:    hs.res.nst.lifetimeHint,
		Suite:           st.Suite.ID,
		MasterSecret:    bytes.Clone(st.MasterSecret),
		EMS:             true,
		PeerIdentity:    st.PeerIdentity,
		LocalIdentity:   st.LocalIdentity,
		PSKIdentityHint: st.PSKIdentityHint,
		PermitDay:       st.PermitDay,
		PostQuantum:     st.PostQuantum,
		ReceivedAt:      hs.cfg.KX.Time(),
	}
}

// runResumed finishes an abbreviated handshake: [NewSessionTicket], the
// server's ChangeCipherSpec and Finished, then ours.
func (hs *clientHandshake) runResumed(sh *serverHelloMsg) (*State, error) {
	s := hs.res.offered
	if err := hs.readNewTicket(); err != nil {
		return nil, err
	}
	keys, err := keysFromMaster(hs.suite, s.MasterSecret, hs.hello.random, sh.random)
	if err != nil {
		return nil, err
	}
	writeKeyLog(hs.cfg.KeyLog, hs.hello.random, keys.master)
	serverVerify, msg, err := hs.readServerFinished(keys)
	if err != nil {
		return nil, err
	}
	hs.tr.write(msg)
	clientVerify, err := sendFinished(hs.rl, hs.suite, keys.master, &hs.tr, keys.clientCipher, labelClientFinished, false)
	if err != nil {
		return nil, err
	}
	st := &State{
		Version:              versionTLS12,
		Suite:                hs.suite,
		ExtendedMasterSecret: hs.ems,
		SecureRenegotiation:  hs.reneg,
		ServerName:           hs.hello.serverName,
		PeerIdentity:         s.PeerIdentity,
		LocalIdentity:        s.LocalIdentity,
		PSKIdentityHint:      s.PSKIdentityHint,
		PermitDay:            s.PermitDay,
		PostQuantum:          s.PostQuantum,
		NegotiatedProtocol:   sh.alpnProtocol,
		MasterSecret:         keys.master,
		ClientFinished:       clientVerify,
		ServerFinished:       append([]byte(nil), serverVerify...),
		DidResume:            true,
	}
	copy(st.ClientRandom[:], hs.hello.random)
	copy(st.ServerRandom[:], sh.random)
	st.Session = hs.newSession(st)
	return st, nil
}
