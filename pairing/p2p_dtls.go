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
	aS     *eG1
	y, w   bls12381.Scalar
	wC, yC []byte
	spent  bool
}

// StartDTLS begins a handshake with the server idS, known in advance:
// y, w ←$ Z_r, Y_C = y·B_C, W_C = w·A_S.
func (c *P2PClient) StartDTLS(rand io.Reader, idS string) (*P2PClientHandshake, error) {
	if c == nil || c.k2 == nil || c.aSs == nil {
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
	hs := &P2PClientHandshake{c: c, idS: idS, aS: c.serverPoint(idS), y: *y, w: *w}
	*y, *w = bls12381.Scalar{}, bls12381.Scalar{}
	hs.yC, hs.wC = c.commit(&hs.y, &hs.w, hs.aS)
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
	x, err := eDecodeG1(xS)
	if err != nil {
		return nil, err
	}
	hs.spent = true
	defer func() { hs.y, hs.w = bls12381.Scalar{}, bls12381.Scalar{} }()
	return hs.c.agree(p2pDTLSPSKLabel, &hs.y, &hs.w, hs.aS, idS, x, xS, hs.yC, hs.wC, nil), nil
}

// FinishDTLS is Finish for DTLS: the same computation with the client's
// (id_C, W_C, Y_C) from its PSK identity, returning the 32-byte PSK
// SHA-256("MTLS1-P2P-DTLS-PSK" ‖ GT(g) ‖ G1(z)). Finish and FinishDTLS
// together may be called once.
func (hs *P2PServerHandshake) FinishDTLS(idC string, wC, yC []byte) ([]byte, error) {
	return hs.finish(p2pDTLSPSKLabel, idC, wC, yC, nil)
}
