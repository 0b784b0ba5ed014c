package pairing

import (
	"crypto/subtle"
	"sync"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
)

// Pairings and GT arithmetic on circl's types. The pairing itself is
// circl's public API (bls12381.ProdPairFrac: one Miller loop per pair, one
// final exponentiation); what is written here is the bookkeeping around it
// (identities, the engine's GT form) and the constant-time GT
// exponentiation.

// g2Lines stands for the prepared form of a fixed G2 argument (Q, K_S,
// K2_C). circl's public API computes Miller-loop lines as it goes, so on
// this engine the prepared form is the point itself.
type g2Lines struct{ q bls12381.G2 }

// prepareG2 prepares q (not the identity) for multiPair.
func prepareG2(q *bls12381.G2) *g2Lines { return &g2Lines{q: *q} }

// multiPair returns Π e(ps[i], qs[i]) with one final exponentiation.
// Pairs with an identity point (e(O, Q) = e(P, O) = 1) are left out.
func multiPair(ps []*bls12381.G1, qs []*g2Lines) *ff.URoot {
	g1s := make([]*bls12381.G1, 0, len(ps))
	g2s := make([]*bls12381.G2, 0, len(ps))
	signs := make([]int, 0, len(ps))
	for i, p := range ps {
		if p.IsIdentity() || qs[i].q.IsIdentity() {
			continue
		}
		g1s, g2s, signs = append(g1s, p), append(g2s, &qs[i].q), append(signs, 1)
	}
	u := new(ff.URoot)
	if len(g1s) == 0 {
		u.SetIdentity()
		return u
	}
	*u = gtFromCircl(bls12381.ProdPairFrac(g1s, g2s, signs))
	return u
}

// circlGTBytes is GT(g) of docs/protocol.md §1 (the same bytes as circl's Gt.MarshalBinary).
func circlGTBytes(u *ff.URoot) []byte {
	b, _ := u.MarshalBinary()
	return b
}

// gtFromCircl converts a circl Gt into the field form used here.
func gtFromCircl(g *bls12381.Gt) ff.URoot {
	b, _ := g.MarshalBinary()
	var u ff.URoot
	if u.UnmarshalBinary(b) != nil {
		panic("pairing: unreachable: bad GT encoding")
	}
	clear(b)
	return u
}

// gtExp returns x^n for x in the cyclotomic subgroup, in constant time
// (fixed 4-bit windows, table look-up by conditional moves), with the
// cheaper cyclotomic squaring.
func gtExp(x *ff.URoot, n *bls12381.Scalar) *ff.URoot {
	nb, _ := n.MarshalBinary()
	defer clear(nb)
	var table [16]ff.Cyclo6
	(*ff.Fp12)(&table[0]).SetOne()
	table[1] = ff.Cyclo6(*x)
	for i := 2; i < 16; i++ {
		table[i].Mul(&table[i-1], &table[1])
	}
	var z, t ff.Cyclo6
	(*ff.Fp12)(&z).SetOne()
	for i := 0; i < 2*len(nb); i++ {
		if i > 0 {
			z.Sqr(&z)
			z.Sqr(&z)
			z.Sqr(&z)
			z.Sqr(&z)
		}
		idx := nb[i/2] >> 4
		if i%2 == 1 {
			idx = nb[i/2] & 0xf
		}
		for j := range table {
			(*ff.Fp12)(&t).CMov((*ff.Fp12)(&t), (*ff.Fp12)(&table[j]), subtle.ConstantTimeByteEq(idx, uint8(j)))
		}
		z.Mul(&z, &t)
	}
	out := ff.URoot(z)
	return &out
}

// generatorLines are the lines of the G2 generator Q, computed once.
var generatorLines = sync.OnceValue(func() *g2Lines { return prepareG2(bls12381.G2Generator()) })
