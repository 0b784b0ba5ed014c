package ciphersuite

import (
	"crypto/ecdh"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// The PSK key exchanges: plain PSK (RFC 4279 §2) and ECDHE_PSK (RFC 5489),
// in one client type and one server type parameterised by kind.
//
// Wire formats (every vector length-prefixed; nothing may trail):
//
//	plain PSK  ServerKeyExchange  opaque psk_identity_hint<0..2^16-1>   (only when a hint is configured)
//	           ClientKeyExchange  opaque psk_identity<0..2^16-1>
//	ECDHE_PSK  ServerKeyExchange  opaque psk_identity_hint<0..2^16-1>
//	                              uint8 curve_type = named_curve(3)
//	                              uint16 named_group
//	                              opaque point<1..2^8-1>
//	           ClientKeyExchange  opaque psk_identity<0..2^16-1>
//	                              opaque point<1..2^8-1>
//
// pre_master_secret = uint16(len(other)) ‖ other ‖ uint16(len(psk)) ‖ psk,
// other = len(psk) zero bytes (plain PSK) or the ECDH shared secret.

// PSK and identity limits (docs/protocol.md §6).
const (
	MinPSKLen         = 16
	MaxPSKLen         = 512
	MaxPSKIdentityLen = 0xFFFF // what the wire can carry; we accept all of it
)

const curveTypeNamedCurve = 3

// pskPreMaster builds the RFC 4279 §2 / RFC 5489 §2 pre-master secret.
func pskPreMaster(other, psk []byte) []byte {
	pms := make([]byte, 0, 4+len(other)+len(psk))
	pms = append(pms, byte(len(other)>>8), byte(len(other)))
	pms = append(pms, other...)
	pms = append(pms, byte(len(psk)>>8), byte(len(psk)))
	return append(pms, psk...)
}

// checkPSK validates a key returned by a PSK callback (a local
// configuration problem, not the peer's fault).
func checkPSK(key []byte) error {
	if len(key) < MinPSKLen || len(key) > MaxPSKLen {
		return Errorf(AlertInternalError, "ciphersuite: PSK is %d bytes, must be %d..%d", len(key), MinPSKLen, MaxPSKLen)
	}
	return nil
}

// printable shortens an identity or hint from the wire for an error message.
func printable(b []byte) string {
	const max = 64
	if len(b) > max {
		return fmt.Sprintf("%q...", b[:max])
	}
	return fmt.Sprintf("%q", b)
}

func zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// ---------------------------------------------------------------- client

// pskClient is the client part for KXPSK or KXECDHEPSK.
type pskClient struct {
	cfg  *ClientConfig
	kind KXKind

	sawSKE    bool
	hint      []byte
	curve     CurveID
	serverPub *ecdh.PublicKey

	identity []byte
	done     bool
}

func newPSKClient(cfg *ClientConfig, kind KXKind) (*pskClient, error) {
	if cfg == nil || cfg.PSK == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: %s suites offered without a PSK callback", kind)
	}
	if kind == KXECDHEPSK && !hasKnownCurve(curvesOrDefault(cfg.Curves)) {
		return nil, Errorf(AlertInternalError, "ciphersuite: ECDHE_PSK suites offered without a supported curve")
	}
	if cfg.Rand == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: ClientConfig.Rand is nil")
	}
	return &pskClient{cfg: cfg, kind: kind}, nil
}

func (c *pskClient) HelloExtensions() ([]Extension, error) { return nil, nil }

func (c *pskClient) ProcessServerKeyExchange(s *Suite, body []byte) error {
	if s == nil || s.KX != c.kind {
		return Errorf(AlertInternalError, "ciphersuite: %s key exchange given suite %v", c.kind, s)
	}
	if c.sawSKE || c.done {
		return Errorf(AlertUnexpectedMessage, "ciphersuite: second ServerKeyExchange")
	}
	if body == nil {
		if c.kind == KXECDHEPSK {
			return Errorf(AlertUnexpectedMessage, "ciphersuite: %s: server sent no ServerKeyExchange", s)
		}
		return nil // plain PSK without a hint
	}
	c.sawSKE = true
	in := cryptobyte.String(body)
	var hint cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&hint) {
		return Errorf(AlertDecodeError, "ciphersuite: %s: malformed psk_identity_hint in ServerKeyExchange", s)
	}
	if len(hint) > 0 {
		c.hint = append([]byte(nil), hint...)
	}
	if c.kind == KXPSK {
		if !in.Empty() {
			return Errorf(AlertDecodeError, "ciphersuite: %s: %d trailing bytes in ServerKeyExchange", s, len(in))
		}
		return nil
	}
	var curveType uint8
	var group uint16
	var point cryptobyte.String
	if !in.ReadUint8(&curveType) || !in.ReadUint16(&group) ||
		!in.ReadUint8LengthPrefixed(&point) || len(point) == 0 {
		return Errorf(AlertDecodeError, "ciphersuite: %s: malformed ServerECDHParams", s)
	}
	if !in.Empty() {
		return Errorf(AlertDecodeError, "ciphersuite: %s: %d trailing bytes in ServerKeyExchange", s, len(in))
	}
	if curveType != curveTypeNamedCurve {
		return Errorf(AlertIllegalParameter, "ciphersuite: %s: server sent curve type %d, want named_curve", s, curveType)
	}
	id := CurveID(group)
	if !curveIn(id, curvesOrDefault(c.cfg.Curves)) || ecdhCurve(id) == nil {
		return Errorf(AlertIllegalParameter, "ciphersuite: %s: server chose group %d, which was not offered", s, group)
	}
	pub, err := parsePoint(id, point)
	if err != nil {
		return err
	}
	c.curve, c.serverPub = id, pub
	return nil
}

// psk asks the configuration for the identity and key for the hint. The
// callback sees nil when the server sent no hint or an empty one (RFC 4279
// gives the two the same meaning).
func (c *pskClient) psk() (identity, key []byte, err error) {
	var hint []byte
	if len(c.hint) > 0 {
		hint = c.hint
	}
	identity, key, err = c.cfg.PSK(hint)
	if err != nil {
		return nil, nil, &AlertError{Alert: AlertHandshakeFailure, Err: fmt.Errorf("ciphersuite: no PSK for hint %s: %w", printable(hint), err)}
	}
	if len(identity) == 0 {
		return nil, nil, Errorf(AlertInternalError, "ciphersuite: configuration error: the PSK callback returned an empty identity")
	}
	if len(identity) > MaxPSKIdentityLen {
		return nil, nil, Errorf(AlertInternalError, "ciphersuite: configuration error: PSK identity is %d bytes, at most %d fit", len(identity), MaxPSKIdentityLen)
	}
	if err := checkPSK(key); err != nil {
		return nil, nil, err
	}
	return identity, key, nil
}

func (c *pskClient) GenerateClientKeyExchange(s *Suite) (body, preMaster []byte, err error) {
	if s == nil || s.KX != c.kind {
		return nil, nil, Errorf(AlertInternalError, "ciphersuite: %s key exchange given suite %v", c.kind, s)
	}
	if c.done {
		return nil, nil, Errorf(AlertInternalError, "ciphersuite: GenerateClientKeyExchange called twice")
	}
	if c.kind == KXECDHEPSK && c.serverPub == nil {
		return nil, nil, Errorf(AlertUnexpectedMessage, "ciphersuite: %s: no ServerKeyExchange processed", s)
	}
	identity, key, err := c.psk()
	if err != nil {
		return nil, nil, err
	}
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(identity) })
	if c.kind == KXPSK {
		other := make([]byte, len(key))
		preMaster = pskPreMaster(other, key)
	} else {
		priv, err := generateKey(c.curve, c.cfg.Rand)
		if err != nil {
			return nil, nil, err
		}
		shared, err := priv.ECDH(c.serverPub)
		if err != nil {
			return nil, nil, Errorf(AlertIllegalParameter, "ciphersuite: %s: server's %s point gives no shared secret: %v", s, curveName(c.curve), err)
		}
		preMaster = pskPreMaster(shared, key)
		zero(shared)
		pub := priv.PublicKey().Bytes()
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(pub) })
	}
	body, err = b.Bytes()
	if err != nil {
		return nil, nil, Errorf(AlertInternalError, "ciphersuite: building ClientKeyExchange: %v", err)
	}
	c.identity = append([]byte(nil), identity...)
	c.done = true
	return body, preMaster, nil
}

// PeerIdentity is empty: PSK authenticates no server identity, only
// knowledge of the key (docs/protocol.md §5). The hint is PSKIdentityHint.
func (c *pskClient) PeerIdentity() string { return "" }

// PSKIdentityHint is the server's psk_identity_hint, unauthenticated.
func (c *pskClient) PSKIdentityHint() string { return string(c.hint) }

func (c *pskClient) LocalIdentity() string { return string(c.identity) }

// ---------------------------------------------------------------- server

// pskServer is the server part for KXPSK or KXECDHEPSK.
type pskServer struct {
	cfg   *ServerConfig
	suite *Suite

	curve CurveID
	priv  *ecdh.PrivateKey

	identity []byte
	done     bool
}

func newPSKServer(cfg *ServerConfig, s *Suite, hello *ClientHelloInfo) (*pskServer, error) {
	if cfg == nil || cfg.PSK == nil {
		return nil, Errorf(AlertHandshakeFailure, "ciphersuite: %s chosen but the server has no PSK callback", s)
	}
	if len(cfg.Hint) > MaxPSKIdentityLen {
		return nil, Errorf(AlertInternalError, "ciphersuite: configuration error: psk_identity_hint is %d bytes, at most %d fit", len(cfg.Hint), MaxPSKIdentityLen)
	}
	if cfg.Rand == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: ServerConfig.Rand is nil")
	}
	k := &pskServer{cfg: cfg, suite: s}
	if s.KX == KXECDHEPSK {
		if !pointFormatsOK(hello) {
			return nil, Errorf(AlertHandshakeFailure, "ciphersuite: %s: client does not accept uncompressed points", s)
		}
		k.curve = pickCurve(cfg.Curves, hello)
		if k.curve == 0 {
			return nil, Errorf(AlertHandshakeFailure, "ciphersuite: %s: no curve in common with the client", s)
		}
	}
	return k, nil
}

func (k *pskServer) GenerateServerKeyExchange() ([]byte, error) {
	if k.suite.KX == KXPSK && len(k.cfg.Hint) == 0 {
		return nil, nil
	}
	if k.priv != nil || k.done {
		return nil, Errorf(AlertInternalError, "ciphersuite: GenerateServerKeyExchange called twice")
	}
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k.cfg.Hint) })
	if k.suite.KX == KXECDHEPSK {
		priv, err := generateKey(k.curve, k.cfg.Rand)
		if err != nil {
			return nil, err
		}
		k.priv = priv
		b.AddUint8(curveTypeNamedCurve)
		b.AddUint16(uint16(k.curve))
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(priv.PublicKey().Bytes()) })
	}
	body, err := b.Bytes()
	if err != nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: building ServerKeyExchange: %v", err)
	}
	return body, nil
}

func (k *pskServer) ProcessClientKeyExchange(body []byte) ([]byte, error) {
	s := k.suite
	if k.done {
		return nil, Errorf(AlertUnexpectedMessage, "ciphersuite: second ClientKeyExchange")
	}
	if s.KX == KXECDHEPSK && k.priv == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: %s: ClientKeyExchange before ServerKeyExchange", s)
	}
	in := cryptobyte.String(body)
	var identity, point cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&identity) {
		return nil, Errorf(AlertDecodeError, "ciphersuite: %s: malformed psk_identity in ClientKeyExchange", s)
	}
	if s.KX == KXECDHEPSK {
		if !in.ReadUint8LengthPrefixed(&point) || len(point) == 0 {
			return nil, Errorf(AlertDecodeError, "ciphersuite: %s: malformed point in ClientKeyExchange", s)
		}
	}
	if !in.Empty() {
		return nil, Errorf(AlertDecodeError, "ciphersuite: %s: %d trailing bytes in ClientKeyExchange", s, len(in))
	}
	var peer *ecdh.PublicKey
	if s.KX == KXECDHEPSK {
		var err error
		if peer, err = parsePoint(k.curve, point); err != nil {
			return nil, err
		}
	}

	key, err := k.cfg.PSK(identity)
	if err != nil {
		return nil, &AlertError{Alert: AlertUnknownPSKIdentity, Err: fmt.Errorf("ciphersuite: unknown PSK identity %s: %w", printable(identity), err)}
	}
	if err := checkPSK(key); err != nil {
		return nil, err
	}
	// A PSK identity the policy rejects is reported to the peer as
	// unknown_psk_identity rather than access_denied (kx.go): for PSK
	// suites the two are indistinguishable to a client anyway, and this
	// way a rejected identity does not reveal that it exists.
	if v := k.cfg.VerifyPeerIdentity; v != nil {
		if err := v(string(identity)); err != nil {
			return nil, &AlertError{Alert: AlertUnknownPSKIdentity, Err: fmt.Errorf("ciphersuite: PSK identity %s rejected: %w", printable(identity), err)}
		}
	}

	var pms []byte
	if s.KX == KXPSK {
		pms = pskPreMaster(make([]byte, len(key)), key)
	} else {
		shared, err := k.priv.ECDH(peer)
		if err != nil {
			return nil, Errorf(AlertIllegalParameter, "ciphersuite: %s: client's %s point gives no shared secret: %v", s, curveName(k.curve), err)
		}
		pms = pskPreMaster(shared, key)
		zero(shared)
		k.priv = nil
	}
	k.identity = append([]byte(nil), identity...)
	k.done = true
	return pms, nil
}

func (k *pskServer) PeerIdentity() string {
	if !k.done {
		return ""
	}
	return string(k.identity)
}
