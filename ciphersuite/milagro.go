package ciphersuite

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/milagro-go/milagro/pairing"
)

// The Milagro key exchanges (docs/protocol.md §3–5): Milagro CS
// (M-Pin Full with a forward-secret key agreement) and Milagro P2P
// (Chow–Choo). The cryptography is package pairing's; this file carries its
// values in TLS messages and maps every failure to the alert of docs/protocol.md §5.1:
//
//	bad length, trailing bytes, identity<1..2^10> out of bounds  decode_error
//	group element invalid (encoding, curve, subgroup, identity),
//	identity not UTF-8 or with a control character               illegal_parameter
//	CS server identity this server has no key for                unrecognized_name
//	M-Pin check, permit, clock skew, identity denied, lockout,
//	replayed hello, P2P server identity not the expected one     access_denied
//	pairing work refused for this source (flood)                 handshake_failure
//	milagro_pq: see pq.go (decode_error, illegal_parameter,
//	insufficient_security, unsupported_extension)
//
// Wire formats (milagro_wire.go has the parsers):
//
//	CS   ClientHello milagro_cs (0xFF4D)  identity<1..2^10> ‖ uint64 permit_day ‖ uint64 unix_time ‖ U[48] ‖ V[48] ‖ server_identity<0..2^10>
//	     ServerKeyExchange                W[48]
//	     ClientKeyExchange                R[48]
//	P2P  ServerKeyExchange                identity<1..2^10> ‖ X_S[48]
//	     ClientKeyExchange                identity<1..2^10> ‖ W_C[48] ‖ Y_C[96]

// CSClient holds a client's Milagro CS credentials: a prepared
// pairing.CSClient (key, or PIN token and PIN, and optional time permit).
// The pairing object is safe for concurrent use and caches e(K', B_S), so
// one CSClient should serve every handshake of a configuration.
type CSClient struct {
	// Client is the prepared client key (and permit) of this handshake.
	Client *pairing.CSClient
	// ServerID is id_S, the server identity the client expects ("" for the
	// deployment-wide server key). The server's Finished proves it.
	ServerID string
}

// CSServer holds a server's Milagro CS credentials and policy.
type CSServer struct {
	// GetServer returns the prepared server key K_S for the server
	// identity a client asks for ("" for the deployment-wide key), or nil
	// when this server has none (unrecognized_name). A prepared key is
	// safe for concurrent use and caches per-identity points: build it
	// once, not per call.
	GetServer func(serverID string) *pairing.CSServer
	// ClockSkew is the accepted difference between the client's time and
	// the server's; 0 means pairing.DefaultClockSkew (30 s).
	ClockSkew time.Duration
	// Permits is the permit policy (docs/protocol.md §3.2): required (the zero value) or
	// optional.
	Permits pairing.PermitMode
	// Guard, if set, is asked before any pairing and told the outcome
	// (lockout, replay cache, pairing gate); per connection.
	Guard HelloGuard
	// OnDenied, if set, is called when a proof fails or a guard refuses a
	// hello, with the client identity (unauthenticated) and the reason; it
	// lets the caller count and log at a rate-limited level.
	OnDenied func(id, reason string)
}

func (c *CSServer) server(id string) *pairing.CSServer {
	if c.GetServer == nil {
		return nil
	}
	return c.GetServer(id)
}

func (c *CSServer) denied(id, reason string) {
	if c.OnDenied != nil {
		c.OnDenied(id, reason)
	}
}

// P2PClient holds a P2P peer's credentials when it is the TLS client.
type P2PClient struct {
	Client *pairing.P2PClient
	// ServerID is the server identity this client accepts; any other id_S
	// in the ServerKeyExchange ends the handshake with access_denied. It
	// must not be empty.
	ServerID string
}

// P2PServer holds a P2P peer's credentials when it is the TLS server.
type P2PServer struct {
	Server *pairing.P2PServer
	// Guard, if set, is asked before the pairing of a ClientKeyExchange
	// and told the outcome; per connection.
	Guard HelloGuard
}

func (c *CSServer) skew() time.Duration {
	if c.ClockSkew > 0 {
		return c.ClockSkew
	}
	return pairing.DefaultClockSkew
}

// milagroClientSupports / milagroServerSupports: the Milagro part of Supports.
func milagroClientSupports(cfg *ClientConfig, s *Suite) bool {
	switch s.KX {
	case KXMilagroCS:
		return cfg.CS != nil && cfg.CS.Client != nil
	case KXMilagroP2P:
		return cfg.P2P != nil && cfg.P2P.Client != nil && cfg.P2P.ServerID != ""
	}
	return false
}

// milagroServerSupports: CS needs the server secret AND the client's
// milagro_cs extension. A client that offers CS suites without the
// extension simply does not get CS: the server goes on down its preference
// list, and if nothing else is common the handshake ends with
// handshake_failure ("no cipher suite in common"), not missing_extension —
// the suite list decides the failure, as for any unusable suite. A present
// but malformed or failing extension is not skipped: NewServerKX rejects
// it with its own alert.
func milagroServerSupports(cfg *ServerConfig, s *Suite, hello *ClientHelloInfo) bool {
	switch s.KX {
	case KXMilagroCS:
		if cfg.CS == nil || cfg.CS.GetServer == nil {
			return false
		}
		_, ok := hello.Extensions[ExtMilagroCS]
		return ok
	case KXMilagroP2P:
		return cfg.P2P != nil && cfg.P2P.Server != nil
	}
	return false
}

// newMilagroClientKX returns the client key exchange part for kind
// (KXMilagroCS or KXMilagroP2P); the dispatcher calls it once per kind
// offered, calls HelloExtensions on it, and routes the chosen suite to it.
func newMilagroClientKX(cfg *ClientConfig, kind KXKind) (ClientKX, error) {
	if cfg.Rand == nil || cfg.Time == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: ClientConfig.Rand and Time are required")
	}
	switch kind {
	case KXMilagroCS:
		if cfg.CS == nil || cfg.CS.Client == nil {
			return nil, Errorf(AlertInternalError, "ciphersuite: Milagro CS suites offered without CS credentials")
		}
		return &csClientKX{cfg: cfg, cs: cfg.CS}, nil
	case KXMilagroP2P:
		if cfg.P2P == nil || cfg.P2P.Client == nil || cfg.P2P.ServerID == "" {
			return nil, Errorf(AlertInternalError, "ciphersuite: Milagro P2P suites offered without a P2P key and an expected server identity")
		}
		return &p2pClientKX{cfg: cfg, p2p: cfg.P2P}, nil
	}
	return nil, Errorf(AlertInternalError, "ciphersuite: %s is not a Milagro key exchange", kind)
}

// newMilagroServerKX returns the server key exchange for a Milagro suite
// (it verifies the milagro_cs proof for CS and may fail with an *AlertError).
func newMilagroServerKX(cfg *ServerConfig, s *Suite, hello *ClientHelloInfo) (ServerKX, error) {
	if cfg.Rand == nil || cfg.Time == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: ServerConfig.Rand and Time are required")
	}
	switch s.KX {
	case KXMilagroCS:
		return newCSServerKX(cfg, s, hello)
	case KXMilagroP2P:
		if cfg.P2P == nil || cfg.P2P.Server == nil {
			return nil, Errorf(AlertHandshakeFailure, "ciphersuite: %s chosen but the server has no P2P key", s)
		}
		// The hybrid's checks come before any pairing (Start, in
		// GenerateServerKeyExchange), in the order of docs/protocol.md §5.1.
		offer, err := pqDecode(cfg, hello)
		if err != nil {
			return nil, err
		}
		if err := pqValidate(cfg, offer, s); err != nil {
			return nil, err
		}
		return &p2pServerKX{cfg: cfg, suite: s, pq: offer.encapsulate()}, nil
	}
	return nil, Errorf(AlertInternalError, "ciphersuite: %s is not a Milagro suite", s)
}

// elementError maps an error of package pairing about a peer's value to its
// alert (docs/protocol.md §5.1).
func elementError(err error, format string, args ...any) error {
	a := AlertInternalError
	switch {
	case errors.Is(err, pairing.ErrLength), errors.Is(err, pairing.ErrKeyEncoding):
		a = AlertDecodeError
	case errors.Is(err, pairing.ErrNonCanonical), errors.Is(err, pairing.ErrNotOnCurve),
		errors.Is(err, pairing.ErrNotInSubgroup), errors.Is(err, pairing.ErrIdentity),
		errors.Is(err, pairing.ErrZeroScalar), errors.Is(err, pairing.ErrInvalidID):
		a = AlertIllegalParameter
	case errors.Is(err, pairing.ErrAuthFailed), errors.Is(err, pairing.ErrPeerIdentity),
		errors.Is(err, pairing.ErrClockSkew), errors.Is(err, pairing.ErrPermitDay):
		a = AlertAccessDenied
	}
	return &AlertError{Alert: a, Err: fmt.Errorf(format+": %w", append(args, err)...)}
}

// ---------------------------------------------------------------- CS client

type csClientKX struct {
	cfg    *ClientConfig
	cs     *CSClient
	client *pairing.CSClient

	hs        *pairing.CSClientHandshake
	helloSent bool
	sawSKE    bool
	r, pms    []byte
	done      bool
	ss        []byte // the hybrid's ML-KEM secret (nil: classic)
	hybrid    bool
}

func (c *csClientKX) setPQSecret(ss []byte) { c.ss = ss }

// PostQuantum reports whether the pre-master secret was the hybrid one.
func (c *csClientKX) PostQuantum() bool { return c.done && c.hybrid }

func (c *csClientKX) HelloExtensions() ([]Extension, error) {
	if c.helloSent {
		return nil, Errorf(AlertInternalError, "ciphersuite: milagro_cs extension requested twice")
	}
	c.helloSent = true
	now := c.cfg.Time().Unix()
	if now < 0 {
		return nil, Errorf(AlertInternalError, "ciphersuite: Milagro CS: the clock reads before 1970")
	}
	client := c.cs.Client
	if client == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: Milagro CS: no client credentials")
	}
	c.client = client
	hello, hs, err := client.Hello(c.cfg.Rand, uint64(now), c.cs.ServerID)
	if err != nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: Milagro CS: preparing the client proof: %v", err)
	}
	data, err := marshalCSHello(hello)
	if err != nil {
		return nil, err
	}
	c.hs = hs
	return []Extension{{Type: ExtMilagroCS, Data: data}}, nil
}

func (c *csClientKX) ProcessServerKeyExchange(s *Suite, body []byte) error {
	if s == nil || s.KX != KXMilagroCS {
		return Errorf(AlertInternalError, "ciphersuite: Milagro CS key exchange given suite %v", s)
	}
	if c.sawSKE || c.done {
		return Errorf(AlertUnexpectedMessage, "ciphersuite: second ServerKeyExchange")
	}
	if body == nil {
		return Errorf(AlertUnexpectedMessage, "ciphersuite: %s: server sent no ServerKeyExchange", s)
	}
	c.sawSKE = true
	if c.hs == nil {
		return Errorf(AlertInternalError, "ciphersuite: %s: no milagro_cs extension was sent", s)
	}
	w, err := parseCSElement(body, "ServerKeyExchange", "W")
	if err != nil {
		return err
	}
	var r, pms []byte
	if c.ss != nil {
		r, pms, err = c.hs.FinishPQ(c.cfg.Rand, w, c.ss)
		clear(c.ss)
		c.ss, c.hybrid = nil, err == nil
	} else {
		r, pms, err = c.hs.Finish(c.cfg.Rand, w)
	}
	if err != nil {
		if errors.Is(err, pairing.ErrRandom) || errors.Is(err, pairing.ErrUnusable) {
			return Errorf(AlertInternalError, "ciphersuite: %s: %v", s, err)
		}
		return elementError(err, "ciphersuite: %s: server's W in ServerKeyExchange", s)
	}
	c.r, c.pms = r, pms
	return nil
}

func (c *csClientKX) GenerateClientKeyExchange(s *Suite) (body, preMaster []byte, err error) {
	if s == nil || s.KX != KXMilagroCS {
		return nil, nil, Errorf(AlertInternalError, "ciphersuite: Milagro CS key exchange given suite %v", s)
	}
	if c.done {
		return nil, nil, Errorf(AlertInternalError, "ciphersuite: GenerateClientKeyExchange called twice")
	}
	if c.pms == nil {
		return nil, nil, Errorf(AlertUnexpectedMessage, "ciphersuite: %s: no ServerKeyExchange processed", s)
	}
	c.done = true
	body, preMaster = c.r, c.pms
	c.r, c.pms = nil, nil
	return body, preMaster, nil
}

// PeerIdentity is id_S, the server identity the client asked for: only a
// holder of the key for id_S derives the same pre-master secret, so the
// server's Finished proves it (the handshake reports it only after that
// Finished verified). "" for the deployment-wide key.
func (c *csClientKX) PeerIdentity() string {
	if !c.done {
		return ""
	}
	return c.cs.ServerID
}

// LocalIdentity is the client identity.
func (c *csClientKX) LocalIdentity() string {
	if c.client != nil {
		return c.client.ID()
	}
	if c.cs.Client != nil {
		return c.cs.Client.ID()
	}
	return ""
}

// PermitDay is the permit day the client sent (0 without a permit).
func (c *csClientKX) PermitDay() uint64 {
	if c.client == nil {
		return 0
	}
	return c.client.Day()
}

// ---------------------------------------------------------------- CS server

type csServerKX struct {
	cfg      *ServerConfig
	suite    *Suite
	hs       *pairing.CSServerHandshake
	id       string
	day      uint64
	serverID string
	sent     bool
	done     bool
	pq       *pqServer // the hybrid (nil: classic)
	adm      Admission // from CSServer.Guard (nil without one)
}

// PeerFinished tells the guards whether the client's Finished verified:
// only then is the handshake a success (it resets the lockout).
func (k *csServerKX) PeerFinished(ok bool) {
	if k.adm != nil {
		k.adm.Finished(ok)
	}
}

// ServerHelloExtensions is milagro_pq with the ciphertext, when hybrid.
func (k *csServerKX) ServerHelloExtensions() []Extension { return k.pq.extensions() }

// PostQuantum reports whether the pre-master secret is the hybrid one.
func (k *csServerKX) PostQuantum() bool { return k.pq != nil }

// LocalIdentity is the server identity id_S this server proved.
func (k *csServerKX) LocalIdentity() string { return k.serverID }

// PermitDay is the permit day the client used (0 without a permit).
func (k *csServerKX) PermitDay() uint64 { return k.day }

func newCSServerKX(cfg *ServerConfig, s *Suite, hello *ClientHelloInfo) (*csServerKX, error) {
	cs := cfg.CS
	if cs == nil || cs.GetServer == nil {
		return nil, Errorf(AlertHandshakeFailure, "ciphersuite: %s chosen but the server has no CS server key", s)
	}
	data, ok := hello.Extensions[ExtMilagroCS]
	if !ok {
		return nil, Errorf(AlertHandshakeFailure, "ciphersuite: %s chosen but the client sent no milagro_cs extension", s)
	}
	// Every cheap check comes before any pairing, in the order of
	// docs/protocol.md §5.1: decode_error, illegal_parameter,
	// insufficient_security (milagro_pq, pq.go), unrecognized_name,
	// access_denied.
	offer, err := pqDecode(cfg, hello) // decode_error
	if err != nil {
		return nil, err
	}
	h, err := parseCSHello(data) // decode_error (an identity breaking the rules: illegal_parameter)
	if err != nil {
		return nil, err
	}
	if err := checkWireID([]byte(h.ID), "milagro_cs extension"); err != nil {
		return nil, err
	}
	if h.ServerID != "" {
		if err := checkWireID([]byte(h.ServerID), "milagro_cs server_identity"); err != nil {
			return nil, err
		}
	}
	if err := h.DecodeElements(); err != nil {
		return nil, elementError(err, "ciphersuite: Milagro CS client %s: milagro_cs extension", printable([]byte(h.ID)))
	}
	if err := pqValidate(cfg, offer, s); err != nil { // illegal_parameter, insufficient_security
		return nil, err
	}
	server := cs.server(h.ServerID)
	if server == nil {
		return nil, Errorf(AlertUnrecognizedName, "ciphersuite: Milagro CS: this server holds no key for server identity %s", printable([]byte(h.ServerID)))
	}
	who := printable([]byte(h.ID))
	now := cfg.Time()
	if err := pairing.CheckTime(now, h.Time, cs.skew()); err != nil {
		cs.denied(h.ID, "clock_skew")
		return nil, elementError(err, "ciphersuite: Milagro CS client %s: its time %d is %s ours (%d), more than the %s allowed",
			who, h.Time, skewString(now, h.Time), now.Unix(), cs.skew())
	}
	if err := pairing.CheckPermitDay(now, h.Day, cs.skew(), cs.Permits); err != nil {
		cs.denied(h.ID, "permit")
		return nil, elementError(err, "ciphersuite: Milagro CS client %s: %s", who, permitProblem(now, h.Day, cs.skew(), cs.Permits))
	}
	// The identity policy runs before the pairing too: a denied identity
	// costs no pairing. Both refusals are access_denied.
	if v := cfg.VerifyPeerIdentity; v != nil {
		if err := v(h.ID); err != nil {
			cs.denied(h.ID, "policy")
			return nil, &AlertError{Alert: AlertAccessDenied, Err: fmt.Errorf("ciphersuite: Milagro CS client %s denied: %w", who, err)}
		}
	}
	// The guards: lockout, replay (the hello is reserved before the
	// pairing, so concurrent copies cost one), pairing gate.
	var adm Admission
	if cs.Guard != nil {
		a, err := cs.Guard.Admit(&HelloAttempt{Kind: KXMilagroCS, ID: h.ID, Hello: data, Expiry: now.Add(2*cs.skew() + time.Second)})
		if err != nil {
			alert := AlertHandshakeFailure
			reason := "busy"
			switch {
			case errors.Is(err, ErrLockedOut):
				alert, reason = AlertAccessDenied, "locked_out"
			case errors.Is(err, ErrReplayed):
				alert, reason = AlertAccessDenied, "replay"
			case errors.Is(err, ErrDenied):
				alert, reason = AlertAccessDenied, "denied"
			}
			cs.denied(h.ID, reason)
			return nil, &AlertError{Alert: alert, Err: fmt.Errorf("ciphersuite: Milagro CS client %s: %w", who, err)}
		}
		adm = a
	}
	hs, err := server.Accept(cfg.Rand, h)
	if err != nil {
		if errors.Is(err, pairing.ErrRandom) || errors.Is(err, pairing.ErrUnusable) {
			if adm != nil {
				adm.Proved(true) // our failure, not the client's
			}
			return nil, Errorf(AlertInternalError, "ciphersuite: %s: %v", s, err)
		}
		if adm != nil {
			adm.Proved(false)
		}
		if errors.Is(err, pairing.ErrAuthFailed) {
			cs.denied(h.ID, "bad_proof")
			return nil, elementError(err, "ciphersuite: Milagro CS client %s: the proof does not verify (wrong key or PIN, a key not combined from every D-TA, a wrong permit, a key for another server identity, or a forgery)", who)
		}
		return nil, elementError(err, "ciphersuite: Milagro CS client %s: milagro_cs extension", who)
	}
	if adm != nil {
		adm.Proved(true)
	}
	// Encapsulation only once the proof verified: a forger costs no ML-KEM.
	return &csServerKX{cfg: cfg, suite: s, hs: hs, id: h.ID, day: h.Day, serverID: h.ServerID, adm: adm, pq: offer.encapsulate()}, nil
}

// ErrLockedOut and ErrReplayed mark the refusal of a Milagro CS client by
// the lockout (repeated failed proofs) and by the replay cache (errors.Is);
// a HelloGuard wraps them beside ErrDenied.
var (
	ErrLockedOut = errors.New("locked out after repeated failed proofs")
	ErrReplayed  = errors.New("replayed ClientHello")
)

func skewString(now time.Time, t uint64) string {
	if t > uint64(1)<<40 {
		return "very far from"
	}
	d := time.Unix(int64(t), 0).Sub(now).Truncate(time.Second)
	if d < 0 {
		return (-d).String() + " behind"
	}
	return d.String() + " ahead of"
}

func permitProblem(now time.Time, d uint64, skew time.Duration, mode pairing.PermitMode) string {
	switch {
	case mode != pairing.PermitsOptional && d == 0:
		return "sent no time permit, which this server requires: the client must send today's (mtls: --permit FILE or --renewal FILE)"
	default:
		return fmt.Sprintf("time permit for day %d is not valid now (day %d; accepted: %v)", d, pairing.Day(now), pairing.PermitDays(now, skew))
	}
}

func (k *csServerKX) GenerateServerKeyExchange() ([]byte, error) {
	if k.sent || k.done {
		return nil, Errorf(AlertInternalError, "ciphersuite: GenerateServerKeyExchange called twice")
	}
	k.sent = true
	return k.hs.W(), nil
}

func (k *csServerKX) ProcessClientKeyExchange(body []byte) ([]byte, error) {
	s := k.suite
	if k.done {
		return nil, Errorf(AlertUnexpectedMessage, "ciphersuite: second ClientKeyExchange")
	}
	if !k.sent {
		return nil, Errorf(AlertInternalError, "ciphersuite: %s: ClientKeyExchange before ServerKeyExchange", s)
	}
	r, err := parseCSElement(body, "ClientKeyExchange", "R")
	if err != nil {
		return nil, err
	}
	var pms []byte
	if k.pq != nil {
		pms, err = k.hs.FinishPQ(r, k.pq.ss)
		clear(k.pq.ss)
	} else {
		pms, err = k.hs.Finish(r)
	}
	if err != nil {
		if errors.Is(err, pairing.ErrAuthFailed) { // R = −h·A: degenerate
			return nil, Errorf(AlertIllegalParameter, "ciphersuite: %s: client's R in ClientKeyExchange is degenerate", s)
		}
		return nil, elementError(err, "ciphersuite: %s: client's R in ClientKeyExchange", s)
	}
	k.done = true
	return pms, nil
}

// PeerIdentity is the verified client identity (the M-Pin proof verified in
// NewServerKX; the key agreement is confirmed by Finished).
func (k *csServerKX) PeerIdentity() string {
	if !k.done {
		return ""
	}
	return k.id
}

// ---------------------------------------------------------------- P2P client

type p2pClientKX struct {
	cfg *ClientConfig
	p2p *P2PClient

	peer   string
	wc, yc []byte
	pms    []byte
	sawSKE bool
	done   bool
	ss     []byte // the hybrid's ML-KEM secret (nil: classic)
	hybrid bool
}

func (c *p2pClientKX) setPQSecret(ss []byte) { c.ss = ss }

// PostQuantum reports whether the pre-master secret was the hybrid one.
func (c *p2pClientKX) PostQuantum() bool { return c.done && c.hybrid }

func (c *p2pClientKX) HelloExtensions() ([]Extension, error) { return nil, nil }

func (c *p2pClientKX) ProcessServerKeyExchange(s *Suite, body []byte) error {
	if s == nil || s.KX != KXMilagroP2P {
		return Errorf(AlertInternalError, "ciphersuite: Milagro P2P key exchange given suite %v", s)
	}
	if c.sawSKE || c.done {
		return Errorf(AlertUnexpectedMessage, "ciphersuite: second ServerKeyExchange")
	}
	if body == nil {
		return Errorf(AlertUnexpectedMessage, "ciphersuite: %s: server sent no ServerKeyExchange", s)
	}
	c.sawSKE = true
	idS, xS, err := parseP2PServerKX(body)
	if err != nil {
		return err
	}
	want := c.p2p.ServerID
	if idS != want {
		return Errorf(AlertAccessDenied, "ciphersuite: %s: server identifies as %s, but %s is expected", s, printable([]byte(idS)), printable([]byte(want)))
	}
	var wc, yc, pms []byte
	if c.ss != nil {
		wc, yc, pms, err = c.p2p.Client.RespondPQ(c.cfg.Rand, want, idS, xS, c.ss)
		clear(c.ss)
		c.ss, c.hybrid = nil, err == nil
	} else {
		wc, yc, pms, err = c.p2p.Client.Respond(c.cfg.Rand, want, idS, xS)
	}
	if err != nil {
		if errors.Is(err, pairing.ErrRandom) || errors.Is(err, pairing.ErrUnusable) {
			return Errorf(AlertInternalError, "ciphersuite: %s: %v", s, err)
		}
		return elementError(err, "ciphersuite: %s: server's X_S in ServerKeyExchange", s)
	}
	c.peer, c.wc, c.yc, c.pms = idS, wc, yc, pms
	return nil
}

func (c *p2pClientKX) GenerateClientKeyExchange(s *Suite) (body, preMaster []byte, err error) {
	if s == nil || s.KX != KXMilagroP2P {
		return nil, nil, Errorf(AlertInternalError, "ciphersuite: Milagro P2P key exchange given suite %v", s)
	}
	if c.done {
		return nil, nil, Errorf(AlertInternalError, "ciphersuite: GenerateClientKeyExchange called twice")
	}
	if c.pms == nil {
		return nil, nil, Errorf(AlertUnexpectedMessage, "ciphersuite: %s: no ServerKeyExchange processed", s)
	}
	body, err = marshalP2PClientKX(c.p2p.Client.ID(), c.wc, c.yc)
	if err != nil {
		return nil, nil, err
	}
	c.done = true
	preMaster = c.pms
	c.pms = nil
	return body, preMaster, nil
}

// PeerIdentity is id_S once the ServerKeyExchange named the expected
// server; the handshake reports it only after Finished verified, which is
// what authenticates it.
func (c *p2pClientKX) PeerIdentity() string {
	if !c.done {
		return ""
	}
	return c.peer
}

func (c *p2pClientKX) LocalIdentity() string { return c.p2p.Client.ID() }

// ---------------------------------------------------------------- P2P server

type p2pServerKX struct {
	cfg   *ServerConfig
	suite *Suite
	hs    *pairing.P2PServerHandshake
	id    string
	done  bool
	pq    *pqServer // the hybrid (nil: classic)
	adm   Admission // from P2PServer.Guard (nil without one)
}

// PeerFinished tells the guards whether the client's Finished verified
// (with a wrong key it does not: that is a P2P failure).
func (k *p2pServerKX) PeerFinished(ok bool) {
	if k.adm != nil {
		k.adm.Finished(ok)
	}
}

// ServerHelloExtensions is milagro_pq with the ciphertext, when hybrid.
func (k *p2pServerKX) ServerHelloExtensions() []Extension { return k.pq.extensions() }

// PostQuantum reports whether the pre-master secret is the hybrid one.
func (k *p2pServerKX) PostQuantum() bool { return k.pq != nil }

func (k *p2pServerKX) GenerateServerKeyExchange() ([]byte, error) {
	if k.hs != nil || k.done {
		return nil, Errorf(AlertInternalError, "ciphersuite: GenerateServerKeyExchange called twice")
	}
	hs, err := k.cfg.P2P.Server.Start(k.cfg.Rand)
	if err != nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: %s: starting the key agreement: %v", k.suite, err)
	}
	k.hs = hs
	return marshalP2PServerKX(hs.ID(), hs.X())
}

func (k *p2pServerKX) ProcessClientKeyExchange(body []byte) ([]byte, error) {
	s := k.suite
	if k.done {
		return nil, Errorf(AlertUnexpectedMessage, "ciphersuite: second ClientKeyExchange")
	}
	if k.hs == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: %s: ClientKeyExchange before ServerKeyExchange", s)
	}
	idC, wc, yc, err := parseP2PClientKX(body)
	if err != nil {
		return nil, err
	}
	who := printable([]byte(idC))
	if g := k.cfg.P2P.Guard; g != nil {
		a, err := g.Admit(&HelloAttempt{Kind: KXMilagroP2P, ID: idC})
		if err != nil {
			alert := AlertHandshakeFailure
			if errors.Is(err, ErrDenied) {
				alert = AlertAccessDenied
			}
			return nil, &AlertError{Alert: alert, Err: fmt.Errorf("ciphersuite: %s: client %s: %w", s, who, err)}
		}
		k.adm = a
	}
	var pms []byte
	if k.pq != nil {
		pms, err = k.hs.FinishPQ(idC, wc, yc, k.pq.ss)
		clear(k.pq.ss)
	} else {
		pms, err = k.hs.Finish(idC, wc, yc)
	}
	if k.adm != nil {
		// The pairing is done; whether the key was right shows in the
		// client's Finished (PeerFinished).
		k.adm.Proved(true)
	}
	if err != nil {
		return nil, elementError(err, "ciphersuite: %s: client %s's ClientKeyExchange", s, who)
	}
	// id_C is authenticated only by the client's Finished, which follows:
	// the handshake applies VerifyPeerIdentity to it after that Finished
	// verified (refusing a mere claim now would tell anyone which
	// identities the policy admits).
	k.id = idC
	k.done = true
	return pms, nil
}

// PeerIdentity is id_C (authenticated by the Finished that follows; the
// handshake calls VerifyPeerIdentity with it once that Finished verified).
func (k *p2pServerKX) PeerIdentity() string {
	if !k.done {
		return ""
	}
	return k.id
}

// LocalIdentity is id_S (the handshake reports it in State.LocalIdentity).
func (k *p2pServerKX) LocalIdentity() string { return k.cfg.P2P.Server.ID() }

// checkWireID validates an identity read from the wire (its length was
// already bounded by the parser) with pairing.CheckID: UTF-8 without control
// or format characters, in NFC, no white space at either end.
func checkWireID(id []byte, where string) error {
	if !utf8.Valid(id) {
		return Errorf(AlertIllegalParameter, "ciphersuite: identity %s in %s is not UTF-8", printable(id), where)
	}
	if err := pairing.CheckID(string(id)); err != nil && len(id) > 0 {
		return Errorf(AlertIllegalParameter, "ciphersuite: identity %s in %s: %v", printable(id), where, err)
	}
	return nil
}
