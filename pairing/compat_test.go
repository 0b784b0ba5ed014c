package pairing

import "github.com/cloudflare/circl/ecc/bls12381"

// Test entry points with circl-typed arguments (the KAT and §7 vector
// tests predate the engine seam).

// finishWith is CSClientHandshake.finish with W as a circl point.
func (hs *CSClientHandshake) finishWith(r *bls12381.Scalar, w *bls12381.G1, wBytes []byte) (rBytes, pms []byte) {
	return hs.finish(r, eG1From(w), wBytes, nil)
}

// respondWith is P2PClient.respond with X_S as a circl point.
func (c *P2PClient) respondWith(y, w *bls12381.Scalar, idS string, x *bls12381.G1, xS []byte) (wC, yC, pms []byte) {
	return c.respond(y, w, idS, eG1From(x), xS, nil)
}

// finishPQWith is finishWith for the post-quantum hybrid.
func (hs *CSClientHandshake) finishPQWith(r *bls12381.Scalar, w *bls12381.G1, wBytes, ss []byte) (rBytes, pms []byte) {
	return hs.finish(r, eG1From(w), wBytes, ss)
}

// respondPQWith is respondWith for the post-quantum hybrid.
func (c *P2PClient) respondPQWith(y, w *bls12381.Scalar, idS string, x *bls12381.G1, xS, ss []byte) (wC, yC, pms []byte) {
	return c.respond(y, w, idS, eG1From(x), xS, ss)
}
