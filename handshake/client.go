package handshake

import (
	"context"
	"net"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// defaultCurves is offered in supported_groups when the key-exchange
// configuration names none.
var defaultCurves = []ciphersuite.CurveID{ciphersuite.X25519, ciphersuite.P256}

// maxHelloRequests bounds how many HelloRequests a client skips in a row.
const maxHelloRequests = 8

// Client runs a client handshake over rl. Errors that end the handshake
// because of the peer or the configuration are *ciphersuite.AlertError
// (Remote=false: the caller, the record layer's owner, sends that alert);
// errors from rl pass through unchanged, as do ctx's errors.
func Client(ctx context.Context, rl RecordLayer, cfg *ClientConfig) (*State, error) {
	if cfg == nil || cfg.Rand == nil || cfg.KX == nil {
		return nil, ciphersuite.Errorf(ciphersuite.AlertInternalError, "handshake: client configuration incomplete (Rand and KX are required)")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.KX.Rand == nil || cfg.KX.Time == nil {
		// The key exchange needs both (ciphersuite contract): default
		// them on a copy, never on the caller's configuration.
		c, kx := *cfg, *cfg.KX
		if kx.Rand == nil {
			kx.Rand = cfg.Rand
		}
		if kx.Time == nil {
			kx.Time = time.Now
		}
		c.KX = &kx
		cfg = &c
	}
	hs := &clientHandshake{ctx: ctx, rl: rl, cfg: cfg}
	return hs.run()
}

type clientHandshake struct {
	ctx     context.Context
	rl      RecordLayer
	cfg     *ClientConfig
	offered []*ciphersuite.Suite
	kx      ciphersuite.ClientKX
	hello   *clientHelloMsg
	suite   *ciphersuite.Suite
	ems     bool
	reneg   bool
	tr      transcript
	res     *clientResume // session tickets (resume_client.go)
	// resumeOnly: the ClientHello offers the session alone, with no key
	// exchange (hs.kx is nil); only an abbreviated handshake can follow.
	resumeOnly bool
}

func (hs *clientHandshake) run() (*State, error) {
	if err := hs.sendHello(); err != nil {
		return nil, err
	}
	sh, err := hs.readServerHello()
	if err != nil {
		return nil, hs.refusedResumption(err)
	}
	if hs.res != nil && hs.res.resumed {
		return hs.runResumed(sh)
	}
	if err := hs.processServerFlight(); err != nil {
		return nil, err
	}
	ckeBody, preMaster, err := hs.kx.GenerateClientKeyExchange(hs.suite)
	if err != nil {
		return nil, asAlert(err, ciphersuite.AlertInternalError, "generating ClientKeyExchange")
	}
	if _, err := parseKeyExchange(typeClientKeyExchange, ckeBody); err != nil {
		zeroize(preMaster)
		return nil, ciphersuite.Errorf(ciphersuite.AlertInternalError, "key exchange produced an unusable ClientKeyExchange: %v", err)
	}
	cke := marshalMessage(typeClientKeyExchange, ckeBody)
	hs.tr.write(cke)

	keys, err := deriveKeys(hs.suite, preMaster, hs.ems, hs.tr.sum(), hs.hello.random, sh.random)
	if err != nil {
		return nil, err
	}
	writeKeyLog(hs.cfg.KeyLog, hs.hello.random, keys.master)

	if err := hs.rl.WriteHandshake(cke); err != nil {
		return nil, err
	}
	clientVerify, err := sendFinished(hs.rl, hs.suite, keys.master, &hs.tr, keys.clientCipher, labelClientFinished, true)
	if err != nil {
		return nil, err
	}

	if err := hs.readNewTicket(); err != nil {
		return nil, err
	}
	serverVerify, _, err := hs.readServerFinished(keys)
	if err != nil {
		return nil, err
	}

	st := &State{
		Version:              versionTLS12,
		Suite:                hs.suite,
		ExtendedMasterSecret: hs.ems,
		SecureRenegotiation:  hs.reneg,
		ServerName:           hs.hello.serverName,
		NegotiatedProtocol:   sh.alpnProtocol,
		PeerIdentity:         hs.kx.PeerIdentity(),
		LocalIdentity:        hs.kx.LocalIdentity(),
		PSKIdentityHint:      kxHint(hs.kx),
		PermitDay:            kxDay(hs.kx),
		PostQuantum:          kxPostQuantum(hs.kx),
		MasterSecret:         keys.master,
		ClientFinished:       clientVerify,
		ServerFinished:       append([]byte(nil), serverVerify...),
	}
	copy(st.ClientRandom[:], hs.hello.random)
	copy(st.ServerRandom[:], sh.random)
	st.Session = hs.newSession(st)
	return st, nil
}

func (hs *clientHandshake) sendHello() error {
	cfg := hs.cfg
	for _, s := range cfg.Suites {
		if s != nil && clientSupports(cfg.KX, s) {
			hs.offered = append(hs.offered, s)
		}
	}
	if len(hs.offered) == 0 {
		why := ""
		if cfg.KX.PQ == ciphersuite.PQRequire {
			why = " (the post-quantum hybrid is required, which only the Milagro suites carry)"
		}
		return ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
			"none of the %d configured cipher suites is usable with the configured credentials%s", len(cfg.Suites), why)
	}
	var kxExts []ciphersuite.Extension
	if s := hs.resumptionOnlySuite(); s != nil {
		// A resumption-only hello: the session's suite and its ticket, no
		// key exchange (resume_client.go).
		hs.offered = []*ciphersuite.Suite{s}
		hs.resumeOnly = true
		data, err := ciphersuite.MarshalCSResumeHello(cfg.KX.CS.ServerID)
		if err != nil {
			return err
		}
		kxExts = []ciphersuite.Extension{{Type: ciphersuite.ExtMilagroCSResume, Data: data}}
	} else {
		kx, err := newClientKX(cfg.KX, hs.offered)
		if err != nil {
			return asAlert(err, ciphersuite.AlertInternalError, "setting up the key exchange")
		}
		hs.kx = kx
		if kxExts, err = kx.HelloExtensions(); err != nil {
			return asAlert(err, ciphersuite.AlertInternalError, "building the key exchange's ClientHello extensions")
		}
	}
	if err := CheckNextProtos(cfg.NextProtos); err != nil {
		return ciphersuite.Errorf(ciphersuite.AlertInternalError, "%v", err)
	}
	random, err := randomBytes(cfg.Rand, randomLength)
	if err != nil {
		return err
	}
	m := &clientHelloMsg{
		vers:               versionTLS12,
		random:             random,
		compressionMethods: []uint8{compressionNone},
		ems:                true,
		secureRenegExt:     true,
		alpnProtocols:      cfg.NextProtos,
	}
	for _, s := range hs.offered {
		m.cipherSuites = append(m.cipherSuites, s.ID)
	}
	if name := cfg.ServerName; name != "" && net.ParseIP(trimBrackets(name)) == nil && validHostName([]byte(name)) {
		m.serverName = name
	}
	for _, s := range hs.offered {
		if isECDHE(s) {
			m.supportedCurves = cfg.KX.Curves
			if len(m.supportedCurves) == 0 {
				m.supportedCurves = defaultCurves
			}
			m.supportedPoints = []uint8{pointUncompressed}
			break
		}
	}
	own := []uint16{extServerName, extSupportedGroups, extECPointFormats, extExtendedMasterSecret, extRenegotiationInfo, extALPN}
	seen := map[uint16]bool{}
	for _, e := range kxExts {
		if seen[e.Type] || containsUint16(own, e.Type) {
			return ciphersuite.Errorf(ciphersuite.AlertInternalError, "key exchange asks for ClientHello extension %d twice or in place of a built-in one", e.Type)
		}
		seen[e.Type] = true
		m.extra = append(m.extra, e)
	}
	if err := hs.addTicketOffer(m); err != nil {
		return err
	}
	if testHookClientHello != nil {
		testHookClientHello(m)
	}
	msg, err := m.marshal()
	if err != nil {
		return ciphersuite.Errorf(ciphersuite.AlertInternalError, "marshalling ClientHello: %v", err)
	}
	hs.hello = m
	hs.tr.write(msg)
	if err := hs.rl.WriteHandshake(msg); err != nil {
		return err
	}
	return hs.rl.Flush()
}

func trimBrackets(s string) string {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return s[1 : len(s)-1]
	}
	return s
}

func containsUint16(list []uint16, v uint16) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// readServerFinished reads the server's ChangeCipherSpec (the read side
// switches to the server's cipher) and its Finished, checked against the
// transcript so far. It returns the verified verify_data and the whole
// message (for the transcript, when the client's Finished follows).
func (hs *clientHandshake) readServerFinished(keys *sessionKeys) (verify, msg []byte, err error) {
	if err := hs.ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := hs.rl.ReadChangeCipherSpec(keys.serverCipher); err != nil {
		return nil, nil, err
	}
	msg, typ, body, err := hs.readSkippingHelloRequest()
	if err != nil {
		return nil, nil, err
	}
	verify, err = checkFinished(hs.suite, keys.master, &hs.tr, typ, body, labelServerFinished, "server")
	if err != nil {
		return nil, nil, err
	}
	return verify, msg, nil
}

// readSkippingHelloRequest reads the next message, dropping (unhashed)
// HelloRequests: the handshake is already in progress (RFC 5246 §7.4.1.1).
func (hs *clientHandshake) readSkippingHelloRequest() ([]byte, uint8, []byte, error) {
	for i := 0; ; i++ {
		msg, typ, body, err := readMessage(hs.ctx, hs.rl)
		if err != nil {
			return nil, 0, nil, err
		}
		if typ != typeHelloRequest {
			return msg, typ, body, nil
		}
		if err := parseEmpty(typ, body); err != nil {
			return nil, 0, nil, err
		}
		if i >= maxHelloRequests {
			return nil, 0, nil, ciphersuite.Errorf(ciphersuite.AlertUnexpectedMessage, "server sent more than %d HelloRequests during the handshake", maxHelloRequests)
		}
	}
}

func (hs *clientHandshake) readServerHello() (*serverHelloMsg, error) {
	msg, typ, body, err := hs.readSkippingHelloRequest()
	if err != nil {
		return nil, err
	}
	if typ != typeServerHello {
		return nil, unexpected(typ, "ServerHello")
	}
	sh, err := parseServerHello(body)
	if err != nil {
		return nil, err
	}
	if sh.vers != versionTLS12 {
		return nil, ciphersuite.Errorf(ciphersuite.AlertProtocolVersion,
			"server chose version %#04x; only TLS 1.2 (0x0303) is supported", sh.vers)
	}
	hs.rl.SetVersion(versionTLS12)
	if sh.compressionMethod != compressionNone {
		return nil, ciphersuite.Errorf(ciphersuite.AlertIllegalParameter,
			"server chose compression method %d; only null compression was offered", sh.compressionMethod)
	}
	for _, s := range hs.offered {
		if s.ID == sh.cipherSuite {
			hs.suite = s
			break
		}
	}
	if hs.suite == nil {
		return nil, ciphersuite.Errorf(ciphersuite.AlertIllegalParameter,
			"server chose cipher suite %#04x, which the client did not offer", sh.cipherSuite)
	}
	// Every extension in the ServerHello must answer one we sent.
	for _, t := range sh.extTypes {
		if !hs.offeredExtension(t) {
			return nil, ciphersuite.Errorf(ciphersuite.AlertUnsupportedExtension,
				"ServerHello carries extension %d, which the client did not offer", t)
		}
	}
	if err := checkServerALPN(hs.hello.alpnProtocols, sh.alpnProtocol, sh.alpnProtocol != ""); err != nil {
		return nil, err
	}
	if sh.hasPointFormats && !containsUint8(sh.supportedPoints, pointUncompressed) {
		return nil, ciphersuite.Errorf(ciphersuite.AlertIllegalParameter,
			"server's ec_point_formats does not include uncompressed points")
	}
	if sh.secureRenegExt {
		if len(sh.secureRenegotiation) != 0 {
			return nil, ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
				"server's renegotiation_info is not empty on an initial handshake")
		}
		hs.reneg = true
	}
	hs.ems = sh.ems
	if !hs.ems {
		if hs.suite.RequiresEMS() {
			return nil, ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
				"server did not negotiate extended_master_secret, which %s requires", hs.suite.Name)
		}
		if !hs.cfg.InsecureAllowNoEMS {
			return nil, ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
				"server did not negotiate extended_master_secret (RFC 7627); set InsecureAllowNoEMS to talk to it anyway")
		}
	}
	hs.tr.start(hs.suite)
	hs.tr.write(msg)
	if err := hs.checkServerHelloTicket(sh); err != nil {
		return nil, err
	}
	if hs.resumeOnly && !hs.res.resumed {
		return nil, ciphersuite.Errorf(ciphersuite.AlertHandshakeFailure,
			"server answered a resumption-only ClientHello (a session ticket and no key exchange) with a full handshake; it should have refused with handshake_failure")
	}
	if err := hs.processServerHelloKX(sh); err != nil {
		return nil, err
	}
	return sh, nil
}

// processServerHelloKX hands a full handshake's ServerHello extensions to
// the key exchange (milagro_pq, docs/protocol.md §5b). An abbreviated
// handshake has no key exchange: milagro_pq there was not asked for.
func (hs *clientHandshake) processServerHelloKX(sh *serverHelloMsg) error {
	if hs.res != nil && hs.res.resumed {
		for _, e := range sh.extra {
			if e.Type == ciphersuite.ExtMilagroPQ {
				return ciphersuite.Errorf(ciphersuite.AlertUnsupportedExtension,
					"server resumed a session and sent milagro_pq, which only a full handshake carries")
			}
		}
		return nil
	}
	if p, ok := hs.kx.(ciphersuite.ServerHelloProcessor); ok {
		if err := p.ProcessServerHello(hs.suite, sh.extra); err != nil {
			return asAlert(err, ciphersuite.AlertHandshakeFailure, "processing the ServerHello")
		}
	}
	return nil
}

func (hs *clientHandshake) offeredExtension(t uint16) bool {
	m := hs.hello
	switch t {
	case extServerName:
		return m.serverName != ""
	case extSupportedGroups:
		return false // never sent by a TLS 1.2 server
	case extECPointFormats:
		return m.hasPointFormats || len(m.supportedPoints) > 0
	case extExtendedMasterSecret:
		return m.ems
	case extRenegotiationInfo:
		return m.secureRenegExt || m.hasSuite(scsvRenegotiation)
	case extALPN:
		return len(m.alpnProtocols) > 0
	}
	for _, e := range m.extra {
		if e.Type == t {
			return true
		}
	}
	return false
}

// processServerFlight handles [ServerKeyExchange] and ServerHelloDone.
func (hs *clientHandshake) processServerFlight() error {
	msg, typ, body, err := hs.readSkippingHelloRequest()
	if err != nil {
		return err
	}
	switch {
	case typ == typeServerKeyExchange:
		skeBody, err := parseKeyExchange(typ, body)
		if err != nil {
			return err
		}
		hs.tr.write(msg)
		if err := hs.kx.ProcessServerKeyExchange(hs.suite, skeBody); err != nil {
			return asAlert(err, ciphersuite.AlertHandshakeFailure, "processing ServerKeyExchange")
		}
		msg, typ, body, err = hs.readSkippingHelloRequest()
		if err != nil {
			return err
		}
	case typ == typeServerHelloDone && hs.suite.ServerKeyExchangeOptional():
		if err := hs.kx.ProcessServerKeyExchange(hs.suite, nil); err != nil {
			return asAlert(err, ciphersuite.AlertHandshakeFailure, "handling the absent ServerKeyExchange")
		}
	case typ == typeServerHelloDone:
		return ciphersuite.Errorf(ciphersuite.AlertUnexpectedMessage,
			"server sent ServerHelloDone without the ServerKeyExchange that %s requires", hs.suite.Name)
	default:
		return unexpected(typ, "ServerKeyExchange or ServerHelloDone")
	}
	if typ != typeServerHelloDone {
		return unexpected(typ, "ServerHelloDone")
	}
	if err := parseEmpty(typ, body); err != nil {
		return err
	}
	hs.tr.write(msg)
	return nil
}
