package handshake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// Server runs a server handshake over rl (errors as for Client).
func Server(ctx context.Context, rl RecordLayer, cfg *ServerConfig) (*State, error) {
	if cfg == nil {
		return nil, ciphersuite.Errorf(ciphersuite.AlertInternalError, "handshake: nil server configuration")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hs := &serverHandshake{ctx: ctx, rl: rl, cfg: cfg}
	st, err := hs.run()
	var ae *ciphersuite.AlertError
	if err != nil && hs.suite != nil && errors.As(err, &ae) {
		err = &SuiteError{Suite: hs.suite, Err: err}
	}
	return st, err
}

// SuiteError is a server handshake that failed after the cipher suite was
// chosen with a TLS alert (for example a Milagro CS proof that does not
// verify): it names the suite, for logs and metrics. Its message is Err's.
type SuiteError struct {
	Suite *ciphersuite.Suite
	Err   error
}

func (e *SuiteError) Error() string { return e.Err.Error() }
func (e *SuiteError) Unwrap() error { return e.Err }

type serverHandshake struct {
	ctx   context.Context
	rl    RecordLayer
	cfg   *ServerConfig
	hello *clientHelloMsg
	suite *ciphersuite.Suite
	kx    ciphersuite.ServerKX
	ems   bool
	reneg bool
	tr    transcript
	res   *serverResume // session tickets (resume_server.go)
	alpn  string        // the negotiated ALPN protocol (alpn.go)
}

func (hs *serverHandshake) run() (*State, error) {
	if err := hs.readClientHello(); err != nil {
		return nil, err
	}
	if hs.resuming() {
		return hs.runResumed()
	}
	// The key exchange's guards learn whether the client's Finished
	// verified: only that completes an authentication (a lockout is reset
	// on it), and anything else after the key exchange began (a wrong key
	// shows as a Finished that does not decrypt; a client may also just
	// leave after the server spent its pairing) is charged to the source.
	finished := false
	if obs, ok := hs.kx.(ciphersuite.FinishedObserver); ok {
		defer func() { obs.PeerFinished(finished) }()
	}
	sh, err := hs.sendServerFlight()
	if err != nil {
		return nil, err
	}

	// ClientKeyExchange.
	msg, typ, body, err := readMessage(hs.ctx, hs.rl)
	if err != nil {
		return nil, err
	}
	if typ != typeClientKeyExchange {
		return nil, unexpected(typ, "ClientKeyExchange")
	}
	ckeBody, err := parseKeyExchange(typ, body)
	if err != nil {
		return nil, err
	}
	preMaster, err := hs.kx.ProcessClientKeyExchange(ckeBody)
	if err != nil {
		return nil, asAlert(err, ciphersuite.AlertHandshakeFailure, "processing ClientKeyExchange")
	}
	hs.tr.write(msg)
	keys, err := deriveKeys(hs.suite, preMaster, hs.ems, hs.tr.sum(), hs.hello.random, sh.random)
	if err != nil {
		return nil, err
	}
	writeKeyLog(hs.cfg.KeyLog, hs.hello.random, keys.master)

	// ChangeCipherSpec, Finished.
	if err := hs.ctx.Err(); err != nil {
		return nil, err
	}
	if err := hs.rl.ReadChangeCipherSpec(keys.clientCipher); err != nil {
		return nil, err
	}
	msg, typ, body, err = readMessage(hs.ctx, hs.rl)
	if err != nil {
		return nil, err
	}
	clientVerify, err := checkFinished(hs.suite, keys.master, &hs.tr, typ, body, labelClientFinished, "client")
	if err != nil {
		return nil, err
	}
	finished = true
	if err := hs.verifyP2PPeer(); err != nil {
		return nil, err
	}
	hs.tr.write(msg)
	if err := hs.writeNewTicket(hs.fullSessionState(keys.master)); err != nil {
		return nil, err
	}

	serverVerify, err := sendFinished(hs.rl, hs.suite, keys.master, &hs.tr, keys.serverCipher, labelServerFinished, false)
	if err != nil {
		return nil, err
	}

	st := &State{
		Version:              versionTLS12,
		Suite:                hs.suite,
		ExtendedMasterSecret: hs.ems,
		SecureRenegotiation:  hs.reneg,
		ServerName:           hs.hello.serverName,
		NegotiatedProtocol:   hs.alpn,
		PeerIdentity:         hs.kx.PeerIdentity(),
		LocalIdentity:        serverLocalIdentity(hs.kx, hs.cfg.KX),
		PermitDay:            kxDay(hs.kx),
		PostQuantum:          kxPostQuantum(hs.kx),
		MasterSecret:         keys.master,
		ClientFinished:       append([]byte(nil), clientVerify...),
		ServerFinished:       serverVerify,
	}
	copy(st.ClientRandom[:], hs.hello.random)
	copy(st.ServerRandom[:], sh.random)
	return st, nil
}

func (hs *serverHandshake) readClientHello() error {
	msg, typ, body, err := readMessage(hs.ctx, hs.rl)
	if err != nil {
		return err
	}
	if typ != typeClientHello {
		return unexpected(typ, "ClientHello")
	}
	// Check the version before anything else, so an old client learns why.
	if len(body) >= 2 {
		if v := uint16(body[0])<<8 | uint16(body[1]); v < versionTLS12 {
			return ciphersuite.Errorf(ciphersuite.AlertProtocolVersion,
				"client offers at most version %#04x; TLS 1.2 (0x0303) is required", v)
		}
	}
	ch, err := parseClientHello(body)
	if err != nil {
		return err
	}
	hs.hello = ch
	hs.tr.write(msg)
	if !containsUint8(ch.compressionMethods, compressionNone) {
		return ciphersuite.Errorf(ciphersuite.AlertIllegalParameter,
			"ClientHello does not offer null compression")
	}

	if hs.cfg.GetConfigForClient != nil {
		// A copy: the callback cannot change the hello the handshake uses.
		info := &ciphersuite.ClientHelloInfo{
			ServerName:      ch.serverName,
			CipherSuites:    slices.Clone(ch.cipherSuites),
			Curves:          slices.Clone(ch.supportedCurves),
			PointFormats:    slices.Clone(ch.supportedPoints),
			SupportedProtos: slices.Clone(ch.alpnProtocols),
		}
		next, err := hs.cfg.GetConfigForClient(info)
		if err != nil {
			return asAlert(err, ciphersuite.AlertInternalError, "GetConfigForClient")
		}
		if next != nil {
			hs.cfg = next
		}
	}
	if hs.cfg.Rand == nil || hs.cfg.KX == nil {
		return ciphersuite.Errorf(ciphersuite.AlertInternalError, "handshake: server configuration incomplete (Rand and KX are required)")
	}
	if hs.cfg.KX.Rand == nil || hs.cfg.KX.Time == nil {
		c, kx := *hs.cfg, *hs.cfg.KX
		if kx.Rand == nil {
			kx.Rand = hs.cfg.Rand
		}
		if kx.Time == nil {
			kx.Time = time.Now
		}
		c.KX = &kx
		hs.cfg = &c
	}

	// RFC 5746: SCSV or an empty renegotiation_info.
	if ch.secureRenegExt {
		if len(ch.secureRenegotiation) != 0 {
			return ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
				"client's renegotiation_info is not empty on an initial handshake")
		}
		hs.reneg = true
	}
	if ch.hasSuite(scsvRenegotiation) {
		hs.reneg = true
	}

	// RFC 7627.
	hs.ems = ch.ems
	if !hs.ems && !hs.cfg.InsecureAllowNoEMS {
		return ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
			"client did not offer extended_master_secret (RFC 7627), which this server requires")
	}
	// RFC 7301, before the suite and the key exchange (as crypto/tls), and
	// before a resumption, whose ServerHello carries it too.
	if hs.alpn, err = negotiateALPN(hs.cfg.NextProtos, ch.alpnProtocols); err != nil {
		return err
	}
	resumeOnly, err := hs.resumptionOnlyHello()
	if err != nil {
		return err
	}
	if err := hs.checkTicket(); err != nil || hs.resuming() {
		return err
	}
	if resumeOnly {
		return hs.refuseResumptionOnly()
	}

	info := &ciphersuite.ClientHelloInfo{
		ServerName:      ch.serverName,
		CipherSuites:    ch.cipherSuites,
		Curves:          ch.supportedCurves,
		PointFormats:    ch.supportedPoints,
		SupportedProtos: ch.alpnProtocols,
		Extensions:      ch.raw,
	}
	if info.Extensions == nil {
		info.Extensions = map[uint16][]byte{}
	}
	skippedForEMS, skippedForPQ := false, false
	for _, s := range hs.cfg.Suites {
		if s == nil || !ch.hasSuite(s.ID) || !serverSupports(hs.cfg.KX, s, info) {
			continue
		}
		if hs.cfg.KX.PQ == ciphersuite.PQRequire && !s.KX.IsMilagro() {
			skippedForPQ = true // a PSK suite cannot be hybrid
			continue
		}
		if !hs.ems && s.RequiresEMS() {
			skippedForEMS = true
			continue
		}
		hs.suite = s
		break
	}
	if hs.suite == nil {
		if skippedForPQ {
			return ciphersuite.Errorf(ciphersuite.AlertInsufficientSecurity,
				"this server requires the post-quantum hybrid, which only the Milagro suites carry; the client offered %s", suiteList(ch.cipherSuites))
		}
		if skippedForEMS {
			return ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
				"client did not offer extended_master_secret, which every common cipher suite requires")
		}
		return ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
			"no cipher suite in common (client offered %s)", suiteList(ch.cipherSuites))
	}
	kx, err := newServerKX(hs.cfg.KX, hs.suite, info)
	if err != nil {
		return asAlert(err, ciphersuite.AlertHandshakeFailure, "setting up the key exchange")
	}
	hs.kx = kx
	return nil
}

// writeServerHello sends the ServerHello of a full or an abbreviated
// handshake (the session_ticket extension and the echoed session_id of a
// resumption come from ticketExtension) and starts the transcript.
func (hs *serverHandshake) writeServerHello() (*serverHelloMsg, error) {
	random, err := randomBytes(hs.cfg.Rand, randomLength)
	if err != nil {
		return nil, err
	}
	sh := &serverHelloMsg{
		vers:              versionTLS12,
		random:            random,
		cipherSuite:       hs.suite.ID,
		compressionMethod: compressionNone,
		ems:               hs.ems,
		secureRenegExt:    hs.reneg,
		alpnProtocol:      hs.alpn,
	}
	if isECDHE(hs.suite) && hs.hello.hasPointFormats {
		sh.supportedPoints = []uint8{pointUncompressed}
	}
	hs.ticketExtension(sh)
	if e, ok := hs.kx.(ciphersuite.ServerHelloExtender); ok && !hs.resuming() {
		sh.extra = append(sh.extra, e.ServerHelloExtensions()...)
	}
	if testHookServerHello != nil {
		testHookServerHello(sh)
	}
	msg, err := sh.marshal()
	if err != nil {
		return nil, ciphersuite.Errorf(ciphersuite.AlertInternalError, "marshalling ServerHello: %v", err)
	}
	hs.tr.start(hs.suite)
	hs.tr.write(msg)
	hs.rl.SetVersion(versionTLS12)
	if err := hs.rl.WriteHandshake(msg); err != nil {
		return nil, err
	}
	return sh, nil
}

func (hs *serverHandshake) sendServerFlight() (*serverHelloMsg, error) {
	sh, err := hs.writeServerHello()
	if err != nil {
		return nil, err
	}

	skeBody, err := hs.kx.GenerateServerKeyExchange()
	if err != nil {
		return nil, asAlert(err, ciphersuite.AlertInternalError, "generating ServerKeyExchange")
	}
	if skeBody == nil && !hs.suite.ServerKeyExchangeOptional() {
		return nil, ciphersuite.Errorf(ciphersuite.AlertInternalError,
			"key exchange for %s produced no ServerKeyExchange", hs.suite.Name)
	}
	if skeBody != nil {
		if _, err := parseKeyExchange(typeServerKeyExchange, skeBody); err != nil {
			return nil, ciphersuite.Errorf(ciphersuite.AlertInternalError, "key exchange produced an unusable ServerKeyExchange: %v", err)
		}
		ske := marshalMessage(typeServerKeyExchange, skeBody)
		hs.tr.write(ske)
		if err := hs.rl.WriteHandshake(ske); err != nil {
			return nil, err
		}
	}
	shd := marshalMessage(typeServerHelloDone, nil)
	hs.tr.write(shd)
	if err := hs.rl.WriteHandshake(shd); err != nil {
		return nil, err
	}
	if err := hs.rl.Flush(); err != nil {
		return nil, err
	}
	return sh, nil
}

// verifyP2PPeer applies VerifyPeerIdentity to a Milagro P2P client identity
// once the client's Finished has verified: P2P authenticates implicitly,
// so until then id_C is a claim anyone can make, and refusing it earlier
// would tell an unauthenticated peer which identities the policy admits.
// (The other key exchanges call VerifyPeerIdentity themselves.)
func (hs *serverHandshake) verifyP2PPeer() error {
	v := hs.cfg.KX.VerifyPeerIdentity
	if v == nil || hs.suite.KX != ciphersuite.KXMilagroP2P {
		return nil
	}
	id := hs.kx.PeerIdentity()
	if err := v(id); err != nil {
		return &ciphersuite.AlertError{Alert: ciphersuite.AlertAccessDenied,
			Err: fmt.Errorf("Milagro P2P client %s denied: %w", quoteID(id), err)}
	}
	return nil
}

// quoteID quotes a peer identity for an error message, bounded in length.
func quoteID(id string) string {
	const max = 64
	if len(id) > max {
		return strconv.Quote(id[:max]) + "..."
	}
	return strconv.Quote(id)
}

// suiteList renders offered suite ids for an error message (bounded).
func suiteList(ids []uint16) string {
	const max = 16
	out := make([]byte, 0, 8*max)
	for i, id := range ids {
		if i == max {
			out = append(out, " ..."...)
			break
		}
		if i > 0 {
			out = append(out, ' ')
		}
		if s := ciphersuite.ByID(id); s != nil {
			out = append(out, s.Name...)
		} else {
			const hexd = "0123456789abcdef"
			out = append(out, '0', 'x', hexd[id>>12], hexd[id>>8&15], hexd[id>>4&15], hexd[id&15])
		}
	}
	return string(out)
}

// serverLocalIdentity is the identity the server presented: the key
// exchange's own when it reports one (P2P), else the PSK identity hint.
func serverLocalIdentity(kx ciphersuite.ServerKX, cfg *ciphersuite.ServerConfig) string {
	if li, ok := kx.(interface{ LocalIdentity() string }); ok {
		return li.LocalIdentity()
	}
	return string(cfg.Hint)
}

// kxHint is the PSK identity hint a client key exchange saw, if any.
func kxHint(kx any) string {
	if h, ok := kx.(interface{ PSKIdentityHint() string }); ok {
		return h.PSKIdentityHint()
	}
	return ""
}

// kxPostQuantum reports whether a key exchange was the post-quantum hybrid.
func kxPostQuantum(kx any) bool {
	h, ok := kx.(ciphersuite.PostQuantum)
	return ok && h.PostQuantum()
}

// kxDay is the Milagro CS permit day a key exchange used, if any.
func kxDay(kx any) uint64 {
	if d, ok := kx.(interface{ PermitDay() uint64 }); ok {
		return d.PermitDay()
	}
	return 0
}
