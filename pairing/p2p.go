package pairing

import (
	"io"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// Milagro P2P (docs/protocol.md §4): Chow–Choo. The TLS server is the sender S (uses
// K1_S), the TLS client the receiver C (uses K2_C).

// P2PServer is a peer prepared to act as the TLS server, with A_S cached.
// It is safe for concurrent use.
type P2PServer struct {
	id    string
	k1    *eG1            // K1_S
	a     *eG1            // A_S = H1_P2P(id_S)
	peers *cache[*eLines] // Miller-loop lines of B_C by id_C
	fp    [32]byte        // KeyFingerprint
}

// NewP2PServer prepares the TLS-server side of a peer from its combined key.
func NewP2PServer(key *P2PKey) (*P2PServer, error) {
	if key == nil {
		return nil, ErrMismatch
	}
	if err := CheckID(key.id); err != nil {
		return nil, err
	}
	if err := checkCombined("P2P key", key.origin); err != nil {
		return nil, err
	}
	if err := checkG1(&key.k1); err != nil {
		return nil, err
	}
	enc, err := key.MarshalBinary()
	return &P2PServer{id: key.id, k1: eG1From(&key.k1), a: eHashG1(DomainP2P, []byte(key.id)),
		peers: newCache[*eLines](p2pCacheSize), fp: keyFingerprint("MTLS1-P2P-key", enc, err)}, nil
}

// ID returns the server identity id_S.
func (s *P2PServer) ID() string { return s.id }

// Zeroize overwrites the key.
func (s *P2PServer) Zeroize() {
	if s.k1 != nil {
		eZeroG1(s.k1)
	}
}

// P2PServerHandshake is the server's state for one handshake.
type P2PServerHandshake struct {
	s     *P2PServer
	x     bls12381.Scalar
	xB    []byte
	spent bool
}

// Start begins a handshake: x ←$ Z_r, X_S = x·A_S.
func (s *P2PServer) Start(rand io.Reader) (*P2PServerHandshake, error) {
	if s == nil || s.id == "" || s.peers == nil {
		return nil, ErrUnusable
	}
	x, err := randomScalar(rand)
	if err != nil {
		return nil, err
	}
	return s.startWith(x), nil
}

// startWith is Start with a given x, which it erases.
func (s *P2PServer) startWith(x *bls12381.Scalar) *P2PServerHandshake {
	hs := &P2PServerHandshake{s: s, x: *x}
	*x = bls12381.Scalar{}
	var xp eG1
	eMul(&xp, &hs.x, s.a)
	hs.xB = eBytesG1(&xp)
	return hs
}

// ID returns id_S for the ServerKeyExchange.
func (hs *P2PServerHandshake) ID() string {
	if hs == nil || hs.s == nil {
		return ""
	}
	return hs.s.id
}

// X returns the 48-byte X_S for the ServerKeyExchange.
func (hs *P2PServerHandshake) X() []byte { return append([]byte(nil), hs.xB...) }

// Finish takes the client's (id_C, W_C, Y_C): π_S = Hq_P2P(X_S ‖ Y_C ‖ W_C ‖
// id_C), π_C = Hq_P2P(Y_C ‖ X_S ‖ W_C ‖ id_S), g = e((x + π_S)·K1_S,
// π_C·B_C + Y_C), z = x·W_C, and returns the 32-byte pre-master secret. The
// client is authenticated only by the Finished messages that follow.
// Finish may be called once.
func (hs *P2PServerHandshake) Finish(idC string, wC, yC []byte) ([]byte, error) {
	return hs.finish(p2pPMSLabel, idC, wC, yC, nil)
}

// FinishPQ is Finish for the post-quantum hybrid (docs/protocol.md §5b)
// with the 32-byte ML-KEM-768 shared secret ss: the pre-master secret is
// SHA-256("MTLS1-P2P-PQ-PMS" ‖ GT(g) ‖ G1(z) ‖ ss).
func (hs *P2PServerHandshake) FinishPQ(idC string, wC, yC, ss []byte) ([]byte, error) {
	if len(ss) != PQSecretSize {
		return nil, ErrLength
	}
	return hs.finish(p2pPMSLabel, idC, wC, yC, ss)
}

// finish is Finish, FinishPQ and FinishDTLS, with the label of the derived
// secret and the hybrid's ML-KEM secret (nil: none).
func (hs *P2PServerHandshake) finish(label, idC string, wC, yC, ss []byte) ([]byte, error) {
	if hs == nil || hs.s == nil || hs.spent {
		return nil, ErrUnusable
	}
	if err := CheckID(idC); err != nil {
		return nil, err
	}
	w, err := eDecodeG1(wC)
	if err != nil {
		return nil, err
	}
	y, err := eDecodeG2(yC)
	if err != nil {
		return nil, err
	}
	hs.spent = true
	defer func() { hs.x = bls12381.Scalar{} }()
	piS, piC := p2pPi(hs.xB, yC, wC, idC, hs.s.id)
	bC := hs.s.peers.get(idC, func() *eLines { return ePrepare(eHashG2(DomainP2P, []byte(idC))) })
	// g = e((x+π_S)·K1_S, π_C·B_C + Y_C)
	//   = e(π_C·k, B_C) · e(k, Y_C) with k = (x+π_S)·K1_S:
	// one more G1 multiplication instead of one in G2, and one shared
	// Miller loop and final exponentiation.
	var e bls12381.Scalar
	e.Add(&hs.x, piS)
	var k, kc, z eG1
	eMul(&k, &e, hs.s.k1)
	e = bls12381.Scalar{}
	eMulPublic(&kc, piC, &k)
	g := ePairFresh(&kc, bC, &k, y)
	eMul(&z, &hs.x, w)
	return premaster(label, g, &z, ss), nil
}

// p2pPi returns π_S = Hq_P2P(X_S ‖ Y_C ‖ W_C ‖ id_C) and
// π_C = Hq_P2P(Y_C ‖ X_S ‖ W_C ‖ id_S).
func p2pPi(xS, yC, wC []byte, idC, idS string) (piS, piC *bls12381.Scalar) {
	piS = Hq(DomainP2P, transcript(nil).raw(xS).raw(yC).raw(wC).id(idC))
	piC = Hq(DomainP2P, transcript(nil).raw(yC).raw(xS).raw(wC).id(idS))
	return
}

// P2PClient is a peer prepared to act as the TLS client, with B_C cached.
// It is safe for concurrent use.
type P2PClient struct {
	id  string
	k2  *eLines      // Miller-loop lines of K2_C
	b   *eG2         // B_C = H2_P2P(id_C)
	aSs *cache[*eG1] // A_S = H1_P2P(id_S) by id_S
}

// NewP2PClient prepares the TLS-client side of a peer from its combined key.
func NewP2PClient(key *P2PKey) (*P2PClient, error) {
	if key == nil {
		return nil, ErrMismatch
	}
	if err := CheckID(key.id); err != nil {
		return nil, err
	}
	if err := checkCombined("P2P key", key.origin); err != nil {
		return nil, err
	}
	if err := checkG2(&key.k2); err != nil {
		return nil, err
	}
	return &P2PClient{id: key.id, k2: ePrepare(eG2From(&key.k2)), b: eHashG2(DomainP2P, []byte(key.id)),
		aSs: newCache[*eG1](p2pClientServers)}, nil
}

// ID returns the client identity id_C.
func (c *P2PClient) ID() string { return c.id }

// Zeroize overwrites the key.
func (c *P2PClient) Zeroize() {
	if c.k2 != nil {
		eZeroLines(c.k2)
	}
}

// p2pClientServers bounds the cache of A_S of one client.
const p2pClientServers = 64

// Respond answers the server's (id_S, X_S) when the client expects the
// server expectedID (ErrPeerIdentity otherwise): y, w ←$ Z_r, Y_C = y·B_C,
// W_C = w·A_S, g = e(π_S·A_S + X_S, (y + π_C)·K2_C), z = w·X_S. It returns
// W_C (48 bytes) and Y_C (96 bytes) for the ClientKeyExchange (with ID())
// and the 32-byte pre-master secret.
func (c *P2PClient) Respond(rand io.Reader, expectedID, idS string, xS []byte) (wC, yC, pms []byte, err error) {
	return c.respondPQ(rand, expectedID, idS, xS, nil)
}

// RespondPQ is Respond for the post-quantum hybrid (docs/protocol.md §5b)
// with the 32-byte ML-KEM-768 shared secret ss: the pre-master secret is
// SHA-256("MTLS1-P2P-PQ-PMS" ‖ GT(g) ‖ G1(z) ‖ ss).
func (c *P2PClient) RespondPQ(rand io.Reader, expectedID, idS string, xS, ss []byte) (wC, yC, pms []byte, err error) {
	if len(ss) != PQSecretSize {
		return nil, nil, nil, ErrLength
	}
	return c.respondPQ(rand, expectedID, idS, xS, ss)
}

func (c *P2PClient) respondPQ(rand io.Reader, expectedID, idS string, xS, ss []byte) (wC, yC, pms []byte, err error) {
	if c == nil || c.k2 == nil || c.aSs == nil {
		return nil, nil, nil, ErrUnusable
	}
	if idS != expectedID {
		return nil, nil, nil, ErrPeerIdentity
	}
	if err := CheckID(idS); err != nil {
		return nil, nil, nil, err
	}
	x, err := eDecodeG1(xS)
	if err != nil {
		return nil, nil, nil, err
	}
	y, err := randomScalar(rand)
	if err != nil {
		return nil, nil, nil, err
	}
	w, err := randomScalar(rand)
	if err != nil {
		return nil, nil, nil, err
	}
	wC, yC, pms = c.respond(y, w, idS, x, xS, ss)
	return wC, yC, pms, nil
}

// respond is Respond with given y and w, which it erases, and decoded X_S;
// ss is the hybrid's ML-KEM secret (nil: classic).
func (c *P2PClient) respond(y, w *bls12381.Scalar, idS string, x *eG1, xS, ss []byte) (wC, yC, pms []byte) {
	defer func() { *y = bls12381.Scalar{}; *w = bls12381.Scalar{} }()
	aS := c.serverPoint(idS)
	yC, wC = c.commit(y, w, aS)
	return wC, yC, c.agree(p2pPMSLabel, y, w, aS, idS, x, xS, yC, wC, ss)
}

// serverPoint returns A_S = H1_P2P(id_S), cached.
func (c *P2PClient) serverPoint(idS string) *eG1 {
	return c.aSs.get(idS, func() *eG1 { return eHashG1(DomainP2P, []byte(idS)) })
}

// commit returns Y_C = y·B_C and W_C = w·A_S.
func (c *P2PClient) commit(y, w *bls12381.Scalar, aS *eG1) (yC, wC []byte) {
	var yp eG2
	eMulG2(&yp, y, c.b)
	var wp eG1
	eMul(&wp, w, aS)
	return eBytesG2(&yp), eBytesG1(&wp)
}

// agree returns SHA-256(label ‖ GT(g) ‖ G1(z)) with
// g = e(π_S·A_S + X_S, (y + π_C)·K2_C) and z = w·X_S.
func (c *P2PClient) agree(label string, y, w *bls12381.Scalar, aS *eG1, idS string, x *eG1, xS, yC, wC, ss []byte) []byte {
	piS, piC := p2pPi(xS, yC, wC, c.id, idS)
	// e(π_S·A_S + X_S, (y+π_C)·K2_C) = e((y+π_C)·(π_S·A_S + X_S), K2_C):
	// two G1 multiplications are cheaper than one in G2.
	var p eG1
	eMulPublic(&p, piS, aS)
	eAdd(&p, &p, x)
	var e bls12381.Scalar
	e.Add(y, piC)
	var q eG1
	eMul(&q, &e, &p)
	e = bls12381.Scalar{}
	g := ePair([]*eG1{&q}, []*eLines{c.k2})
	var z eG1
	eMul(&z, w, x)
	return premaster(label, g, &z, ss)
}
