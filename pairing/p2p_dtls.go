package pairing

import (
	"io"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// Milagro P2P over DTLS (spec dtls-p2p.md): the same Chow–Choo agreement as
// §4, but the client commits to (W_C, Y_C) before it sees the server's hint
// (a DTLS stack fixes the client's PSK identity up front), and the agreed
// value becomes a PSK under its own label.

const p2pDTLSPSKLabel = "MTLS1-P2P-DTLS-PSK"

// P2PClientHandshake is the client's state for one DTLS handshake: it holds
// y and w until Finish.
type P2PClientHandshake struct {
	c      *P2PClient
	idS    string
	aS     *bls12381.G1
	y, w   bls12381.Scalar
	wC, yC []byte
	spent  bool
}

// StartDTLS begins a handshake with the server idS, known in advance:
// y, w ←$ Z_r, Y_C = y·B_C, W_C = w·A_S.
func (c *P2PClient) StartDTLS(rand io.Reader, idS string) (*P2PClientHandshake, error) {
	if c == nil || c.k2 == nil {
		return nil, ErrUnusable
	}
	if err := CheckID(idS); err != nil {
		return nil, err
	}
	y, err := randomScalar(rand)
	if err != nil {
		return nil, err
	}
	w, err := randomScalar(rand)
	if err != nil {
		return nil, err
	}
	hs := &P2PClientHandshake{c: c, idS: idS, aS: H1(DomainP2P, []byte(idS)), y: *y, w: *w}
	*y, *w = bls12381.Scalar{}, bls12381.Scalar{}
	var yp bls12381.G2
	yp.ScalarMult(&hs.y, &c.b)
	var wp bls12381.G1
	wp.ScalarMult(&hs.w, hs.aS)
	hs.yC, hs.wC = yp.BytesCompressed(), wp.BytesCompressed()
	return hs, nil
}

// ID returns id_C.
func (hs *P2PClientHandshake) ID() string { return hs.c.id }

// W returns the 48-byte W_C.
func (hs *P2PClientHandshake) W() []byte { return append([]byte(nil), hs.wC...) }

// Y returns the 96-byte Y_C.
func (hs *P2PClientHandshake) Y() []byte { return append([]byte(nil), hs.yC...) }

// FinishDTLS takes the server's (id_S, X_S) from its hint, checks that id_S
// is the one the handshake was started for (ErrPeerIdentity otherwise),
// decodes X_S strictly and returns the 32-byte PSK
// SHA-256("MTLS1-P2P-DTLS-PSK" ‖ GT(g) ‖ G1(z)) with
// g = e(π_S·A_S + X_S, (y + π_C)·K2_C), z = w·X_S. It may be called once.
func (hs *P2PClientHandshake) FinishDTLS(idS string, xS []byte) ([]byte, error) {
	if hs == nil || hs.c == nil || hs.spent {
		return nil, ErrUnusable
	}
	if idS != hs.idS {
		return nil, ErrPeerIdentity
	}
	x, err := DecodeG1(xS)
	if err != nil {
		return nil, err
	}
	hs.spent = true
	defer func() { hs.y, hs.w = bls12381.Scalar{}, bls12381.Scalar{} }()
	piS, piC := p2pPi(xS, hs.yC, hs.wC, hs.c.id, idS)
	var p bls12381.G1
	mulPublic(&p, piS, hs.aS)
	p.Add(&p, x)
	var e bls12381.Scalar
	e.Add(&hs.y, piC)
	p.ScalarMult(&e, &p)
	e = bls12381.Scalar{}
	g := multiPair([]*bls12381.G1{&p}, []*g2Lines{hs.c.k2})
	var z bls12381.G1
	z.ScalarMult(&hs.w, x)
	return premaster(p2pDTLSPSKLabel, g, &z), nil
}

// FinishDTLS is Finish for DTLS: the same computation with the client's
// (id_C, W_C, Y_C) from its PSK identity, returning the 32-byte PSK
// SHA-256("MTLS1-P2P-DTLS-PSK" ‖ GT(g) ‖ G1(z)). Finish and FinishDTLS
// together may be called once.
func (hs *P2PServerHandshake) FinishDTLS(idC string, wC, yC []byte) ([]byte, error) {
	if hs == nil || hs.s == nil || hs.spent {
		return nil, ErrUnusable
	}
	if err := CheckID(idC); err != nil {
		return nil, err
	}
	w, err := DecodeG1(wC)
	if err != nil {
		return nil, err
	}
	y, err := DecodeG2(yC)
	if err != nil {
		return nil, err
	}
	hs.spent = true
	defer func() { hs.x = bls12381.Scalar{} }()
	piS, piC := p2pPi(hs.xB, yC, wC, idC, hs.s.id)
	bC := hs.s.peers.get(idC, func() *g2Lines { return prepareG2(H2(DomainP2P, []byte(idC))) })
	var e bls12381.Scalar
	e.Add(&hs.x, piS)
	var k, kc, z bls12381.G1
	k.ScalarMult(&e, &hs.s.k1)
	e = bls12381.Scalar{}
	mulPublic(&kc, piC, &k)
	g := multiPair([]*bls12381.G1{&kc, &k}, []*g2Lines{bC, prepareG2(y)})
	z.ScalarMult(&hs.x, w)
	return premaster(p2pDTLSPSKLabel, g, &z), nil
}
