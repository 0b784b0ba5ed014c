package handshake

import (
	"bytes"
	"fmt"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// Server side of session tickets (RFC 5077) and the abbreviated handshake.
//
// The server never trusts a ticket: after decrypting it, it checks the
// session's age against Lifetime, the suite against what both sides offer
// now, the extended master secret (RFC 7627 §5.3), and the key exchange's
// current credentials and policy (ciphersuite.ServerConfig.CheckResumption:
// the binding of the session to the credential that authenticated it, its
// server name and the issuing configuration; identity policy, CS lockout,
// CS permit day, the id_S a CS client asks for). Anything
// wrong means a full handshake, never a failure — except a client that
// drops EMS for an EMS session, which RFC 7627 says to abort.

// ServerTickets enables session tickets on a server.
type ServerTickets struct {
	// Keys returns the ticket keys, newest first: new tickets are sealed
	// under the first; a ticket under any of them is accepted. Nil or no
	// keys: no tickets.
	Keys func() []TicketKey
	// Lifetime bounds a session's age, from its full handshake, at which
	// it may still be resumed (0: DefaultTicketLifetime).
	Lifetime time.Duration
	// OnRefused, if set, is told why a ticket was not accepted (for logs
	// and metrics; the handshake goes on as a full one).
	OnRefused func(reason string)
}

func (t *ServerTickets) lifetime() time.Duration {
	if t.Lifetime > 0 {
		return t.Lifetime
	}
	return DefaultTicketLifetime
}

// serverResume is the state of a server handshake that deals in tickets.
type serverResume struct {
	keys       []TicketKey
	sendTicket bool          // the ServerHello acknowledges session_ticket
	session    *SessionState // set when the session is being resumed
	reissue    bool          // resumed under an older key: issue a fresh ticket
	clientID   []byte        // the client's session_id, echoed on resumption
	refusedWhy string        // why an offered ticket was not resumed (tests, logs)
	tickets    *ServerTickets
}

// checkTicket runs after the ClientHello checks (EMS included) and before
// the suite is chosen. It decides whether the server will issue a ticket
// and whether it resumes the offered one; resumption sets hs.suite.
func (hs *serverHandshake) checkTicket() error {
	t := hs.cfg.Tickets
	data, offered := hs.hello.raw[extSessionTicket]
	if t == nil || t.Keys == nil || !offered {
		return nil
	}
	keys := t.Keys()
	if len(keys) == 0 {
		return nil
	}
	hs.res = &serverResume{keys: keys, tickets: t, sendTicket: hs.ems}
	if len(data) == 0 {
		return nil
	}
	refuse := func(why string) error {
		if t.OnRefused != nil {
			t.OnRefused(why)
		}
		hs.res.refusedWhy = why
		return nil
	}
	if len(hs.hello.sessionID) == 0 {
		return refuse("no session_id with the ticket")
	}
	st, idx, ok := OpenTicket(keys, data)
	if !ok {
		return refuse("ticket does not decrypt (unknown key or tampered)")
	}
	defer func() {
		if hs.res.session != st {
			zeroize(st.MasterSecret)
		}
	}()
	now := hs.cfg.KX.Time()
	created := time.Unix(int64(st.CreatedAt&(1<<62-1)), 0)
	if st.CreatedAt > 1<<62 || now.Sub(created) > t.lifetime() || created.Sub(now) > time.Minute {
		return refuse("session expired")
	}
	if st.Version != versionTLS12 {
		return refuse("other version")
	}
	var suite *ciphersuite.Suite
	for _, s := range hs.cfg.Suites {
		if s != nil && s.ID == st.Suite {
			suite = s
			break
		}
	}
	if suite == nil || !hs.hello.hasSuite(st.Suite) {
		return refuse("suite no longer enabled or offered")
	}
	// RFC 7627 §5.3.
	if !st.EMS {
		return refuse("session without extended master secret")
	}
	if !hs.ems {
		return ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
			"client offers a session that used extended_master_secret without offering it (RFC 7627 §5.3)")
	}
	if !st.PostQuantum && hs.cfg.KX.PQ == ciphersuite.PQRequire {
		return refuse("session was not post-quantum hybrid, which this server requires")
	}
	info := &ciphersuite.ClientHelloInfo{Extensions: hs.hello.raw}
	if info.Extensions == nil {
		info.Extensions = map[uint16][]byte{}
	}
	if err := hs.cfg.KX.CheckResumption(&ciphersuite.ResumedSession{
		Kind:          suite.KX,
		PeerIdentity:  st.PeerIdentity,
		LocalIdentity: st.LocalIdentity,
		PermitDay:     st.PermitDay,
		ServerName:    hs.hello.serverName,
		Binding:       st.Binding,
		Hello:         info,
	}, now); err != nil {
		return refuse("policy: " + err.Error())
	}
	hs.suite = suite
	hs.res.session = st
	hs.res.reissue = idx > 0
	hs.res.sendTicket = idx > 0
	hs.res.clientID = hs.hello.sessionID
	return nil
}

func (hs *serverHandshake) resuming() bool { return hs.res != nil && hs.res.session != nil }

// ticketExtension adds the empty session_ticket extension to a ServerHello
// when a NewSessionTicket will follow.
func (hs *serverHandshake) ticketExtension(sh *serverHelloMsg) {
	if hs.res != nil && hs.res.sendTicket {
		sh.extra = append(sh.extra, ciphersuite.Extension{Type: extSessionTicket})
	}
	if hs.resuming() {
		sh.sessionID = hs.res.clientID
	}
}

// writeNewTicket seals st under the newest key and queues NewSessionTicket
// (hashed into the transcript). A failure to seal sends an empty ticket: the
// client then simply has nothing to resume.
func (hs *serverHandshake) writeNewTicket(st *SessionState) error {
	if hs.res == nil || !hs.res.sendTicket {
		return nil
	}
	m := &newSessionTicketMsg{}
	if st == nil {
		// Acknowledged but nothing to seal: an empty ticket (RFC 5077 §3.3).
	} else if ticket, err := SealTicket(hs.cfg.Rand, hs.res.keys[0], st); err == nil {
		m.ticket = ticket
		left := time.Unix(int64(st.CreatedAt), 0).Add(hs.res.tickets.lifetime()).Sub(hs.cfg.KX.Time())
		if left > 0 {
			m.lifetimeHint = uint32(min(int64(left/time.Second), maxTicketLifetimeHintS))
		}
	}
	msg, err := m.marshal()
	if err != nil {
		return ciphersuite.Errorf(ciphersuite.AlertInternalError, "marshalling NewSessionTicket: %v", err)
	}
	hs.tr.write(msg)
	return hs.rl.WriteHandshake(msg)
}

// fullSessionState is the session a full handshake established, for its
// ticket (nil without EMS: such sessions are never resumed). Without a
// ticket to send it is nil too, and costs nothing: its binding looks the
// credential up again (for a PSK server, a database read per handshake).
func (hs *serverHandshake) fullSessionState(master []byte) *SessionState {
	if !hs.ems || hs.res == nil || !hs.res.sendTicket {
		return nil
	}
	now := hs.cfg.KX.Time().Unix()
	if now < 0 {
		now = 0
	}
	st := &SessionState{
		Version:       versionTLS12,
		Suite:         hs.suite.ID,
		MasterSecret:  master,
		EMS:           true,
		PeerIdentity:  hs.kx.PeerIdentity(),
		LocalIdentity: serverLocalIdentity(hs.kx, hs.cfg.KX),
		PermitDay:     kxDay(hs.kx),
		PostQuantum:   kxPostQuantum(hs.kx),
		CreatedAt:     uint64(now),
	}
	binding, err := hs.cfg.KX.SessionBinding(&ciphersuite.ResumedSession{
		Kind:          hs.suite.KX,
		PeerIdentity:  st.PeerIdentity,
		LocalIdentity: st.LocalIdentity,
		PermitDay:     st.PermitDay,
		ServerName:    hs.hello.serverName,
	})
	if err != nil {
		return nil // the credential vanished meanwhile: an empty ticket
	}
	st.Binding = binding
	return st
}

// runResumed finishes an abbreviated handshake: ServerHello, [NewSessionTicket],
// ChangeCipherSpec, Finished; then the client's ChangeCipherSpec and Finished.
func (hs *serverHandshake) runResumed() (*State, error) {
	sess := hs.res.session
	defer zeroize(sess.MasterSecret)
	sh, err := hs.writeServerHello()
	if err != nil {
		return nil, err
	}
	if hs.res.reissue {
		if err := hs.writeNewTicket(sess); err != nil {
			return nil, err
		}
	}
	keys, err := keysFromMaster(hs.suite, sess.MasterSecret, hs.hello.random, sh.random)
	if err != nil {
		return nil, err
	}
	writeKeyLog(hs.cfg.KeyLog, hs.hello.random, keys.master)
	serverVerify, err := sendFinished(hs.rl, hs.suite, keys.master, &hs.tr, keys.serverCipher, labelServerFinished, true)
	if err != nil {
		return nil, err
	}
	if err := hs.ctx.Err(); err != nil {
		return nil, err
	}
	if err := hs.rl.ReadChangeCipherSpec(keys.clientCipher); err != nil {
		return nil, err
	}
	_, typ, body, err := readMessage(hs.ctx, hs.rl)
	if err != nil {
		return nil, err
	}
	clientVerify, err := checkFinished(hs.suite, keys.master, &hs.tr, typ, body, labelClientFinished, "client")
	if err != nil {
		return nil, err
	}
	st := &State{
		Version:              versionTLS12,
		Suite:                hs.suite,
		ExtendedMasterSecret: hs.ems,
		SecureRenegotiation:  hs.reneg,
		ServerName:           hs.hello.serverName,
		PeerIdentity:         sess.PeerIdentity,
		LocalIdentity:        sess.LocalIdentity,
		PermitDay:            sess.PermitDay,
		PostQuantum:          sess.PostQuantum,
		NegotiatedProtocol:   hs.alpn,
		MasterSecret:         keys.master,
		ClientFinished:       append([]byte(nil), clientVerify...),
		ServerFinished:       serverVerify,
		DidResume:            true,
	}
	copy(st.ClientRandom[:], hs.hello.random)
	copy(st.ServerRandom[:], sh.random)
	return st, nil
}

// keysFromMaster makes the record ciphers of a resumed session (the master
// secret is copied: the session keeps its own).
func keysFromMaster(s *ciphersuite.Suite, master, clientRandom, serverRandom []byte) (*sessionKeys, error) {
	km := keysFromMasterSecret(s, master, clientRandom, serverRandom)
	defer km.zero()
	cc, err := newRecordCipher(s, km.clientKey, km.clientIV)
	if err != nil {
		return nil, asAlert(err, ciphersuite.AlertInternalError, "creating the client record cipher")
	}
	sc, err := newRecordCipher(s, km.serverKey, km.serverIV)
	if err != nil {
		return nil, asAlert(err, ciphersuite.AlertInternalError, "creating the server record cipher")
	}
	return &sessionKeys{master: bytes.Clone(master), clientCipher: cc, serverCipher: sc}, nil
}

// resumptionOnlyHello reports whether the ClientHello is resumption-only
// (docs/protocol.md §5c): it carries milagro_cs_resume, which is only
// valid beside a non-empty session ticket and without milagro_cs (a hello
// is a full CS offer or a resumption-only one, never both).
func (hs *serverHandshake) resumptionOnlyHello() (bool, error) {
	data, ok := hs.hello.raw[ciphersuite.ExtMilagroCSResume]
	if !ok {
		return false, nil
	}
	if _, err := ciphersuite.ParseCSResumeHello(data); err != nil {
		return false, err
	}
	if _, full := hs.hello.raw[ciphersuite.ExtMilagroCS]; full {
		return false, ciphersuite.Errorf(ciphersuite.AlertIllegalParameter,
			"ClientHello carries both milagro_cs and milagro_cs_resume")
	}
	if len(hs.hello.raw[extSessionTicket]) == 0 {
		return false, ciphersuite.Errorf(ciphersuite.AlertIllegalParameter,
			"ClientHello carries milagro_cs_resume without a session ticket")
	}
	return true, nil
}

// refuseResumptionOnly ends a resumption-only handshake whose ticket the
// server does not resume: handshake_failure, before any ServerHello, so
// the client can reconnect with a full offer. The error says why (for the
// server's logs; the alert carries no reason).
func (hs *serverHandshake) refuseResumptionOnly() error {
	why := "session tickets are off"
	if hs.res != nil && hs.res.refusedWhy != "" {
		why = hs.res.refusedWhy
	}
	return &ciphersuite.AlertError{Alert: ciphersuite.AlertHandshakeFailure,
		Err: fmt.Errorf("%w (%s)", ErrResumptionRefused, why)}
}
