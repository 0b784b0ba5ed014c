package pairing

import (
	"crypto/subtle"
	"sync"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
)

// Pairings and GT arithmetic on circl's field types (package ff): the
// Miller loop of the optimal ate pairing over lines precomputed for fixed
// G2 arguments (Q, K_S, K2_C), a shared accumulator for products, circl's
// final exponentiation, and a constant-time GT exponentiation. The line and
// point formulas are the ones derived in engine_blst_miller.go (the blst
// engine runs the same loop in C on blst's field arithmetic); tests check
// both against circl's bls12381.Pair.

// blsAbsZ is |z| for the BLS12-381 parameter z < 0: the Miller loop runs
// over its bits below the leading one.
const blsAbsZ uint64 = 0xd201000000010000

// g2Lines are the 68 lines of a G2 point in loop order. A line (c0, c1, c2)
// takes at P = (xP, yP) the value c0 + c1·xP·w² + c2·yP·w³, which is
// circl's ff.LineValue (c0, c1·xP, c2·yP).
type g2Lines [68][3]ff.Fp2

// g2Proj is a G2 point in homogeneous coordinates (X : Y : Z).
type g2Proj struct{ x, y, z ff.Fp2 }

func fp2Times3(z *ff.Fp2) { t := *z; z.Add(z, z); z.Add(z, &t) }
func fp2Times4(z *ff.Fp2) { z.Add(z, z); z.Add(z, z) }

// tangent replaces t by 2t and writes the tangent line at t.
func (t *g2Proj) tangent(l *[3]ff.Fp2) {
	var b, c, e, f, h, k ff.Fp2
	b.Sqr(&t.y) // B = Y²
	c.Sqr(&t.z) // C = Z²
	h.Add(&t.y, &t.z)
	h.Sqr(&h)
	h.Sub(&h, &b)
	h.Sub(&h, &c) // H = 2YZ
	e = c
	e.MulBeta() // ξC
	fp2Times3(&e)
	fp2Times4(&e) // E = 3b'Z²
	f = e
	fp2Times3(&f) // F = 3E

	l[0].Sub(&b, &e) // c0 = Y² − 3b'Z²
	k.Sqr(&t.x)
	fp2Times3(&k)
	k.Neg()
	l[1] = k // c1 = −3X²
	l[2] = h // c2 = 2YZ

	k.Mul(&t.x, &t.y)
	c.Sub(&b, &f)
	k.Mul(&k, &c)
	t.x.Add(&k, &k) // X' = 2XY(B − F)
	c.Add(&b, &f)
	c.Sqr(&c)
	e.Sqr(&e)
	fp2Times3(&e)
	fp2Times4(&e)
	t.y.Sub(&c, &e) // Y' = (B + F)² − 12E²
	t.z.Mul(&b, &h)
	fp2Times4(&t.z) // Z' = 4BH
}

// chord replaces t by t + q (q affine, t ≠ ±q) and writes the line
// through them.
func (t *g2Proj) chord(qx, qy *ff.Fp2, l *[3]ff.Fp2) {
	var xqz, yqz, th, mu, mu2, mu3, d, k ff.Fp2
	xqz.Mul(qx, &t.z)
	yqz.Mul(qy, &t.z)
	th.Sub(&t.y, &yqz) // θ = Y − yQ·Z
	mu.Sub(&t.x, &xqz) // μ = X − xQ·Z

	l[0].Mul(&th, qx)
	k.Mul(&mu, qy)
	l[0].Sub(&l[0], &k) // c0 = θ·xQ − μ·yQ
	l[1] = th
	l[1].Neg() // c1 = −θ
	l[2] = mu  // c2 = μ

	mu2.Sqr(&mu)
	mu3.Mul(&mu2, &mu)
	d.Sqr(&th)
	d.Mul(&d, &t.z)
	k.Add(&t.x, &xqz)
	k.Mul(&k, &mu2)
	d.Sub(&d, &k) // D = θ²Z − μ²(X + xQ·Z)

	t.x.Mul(&mu, &d) // X' = μD
	k.Mul(&mu2, &xqz)
	k.Sub(&k, &d)
	k.Mul(&k, &th)
	d.Mul(&yqz, &mu3)
	t.y.Sub(&k, &d)     // Y' = θ(μ²xQ·Z − D) − yQ·μ³Z
	t.z.Mul(&mu3, &t.z) // Z' = μ³Z
}

// prepareG2 computes the lines of q; nil for the identity (whose pairings
// are 1).
func prepareG2(q *bls12381.G2) *g2Lines {
	if q.IsIdentity() {
		return nil
	}
	b := q.Bytes() // affine: x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0
	var qx, qy ff.Fp2
	if qx.UnmarshalBinary(b[:96]) != nil || qy.UnmarshalBinary(b[96:]) != nil {
		panic("pairing: unreachable: circl encoded a non-canonical G2 point")
	}
	t := g2Proj{x: qx, y: qy}
	t.z.SetOne()
	ls := new(g2Lines)
	n := 0
	for i := 62; i >= 0; i-- {
		t.tangent(&ls[n])
		n++
		if blsAbsZ>>i&1 == 1 {
			t.chord(&qx, &qy, &ls[n])
			n++
		}
	}
	return ls
}

// multiPair returns Π e(ps[i], qs[i]) with one Miller loop over a shared
// accumulator and one final exponentiation. Pairs with an identity point
// (e(O, Q) = e(P, O) = 1) are left out.
func multiPair(ps []*bls12381.G1, qs []*g2Lines) *ff.URoot {
	type evalAt struct {
		x, y ff.Fp
		l    *g2Lines
	}
	pts := make([]evalAt, 0, len(ps))
	for i, p := range ps {
		if p.IsIdentity() || qs[i] == nil {
			continue
		}
		b := p.Bytes() // affine: x ‖ y
		var e evalAt
		if e.x.UnmarshalBinary(b[:48]) != nil || e.y.UnmarshalBinary(b[48:]) != nil {
			panic("pairing: unreachable: circl encoded a non-canonical G1 point")
		}
		e.l = qs[i]
		pts = append(pts, e)
	}
	var acc ff.Fp12Cubic
	acc.SetOne()
	var g ff.LineValue
	mulLines := func(k int) {
		for j := range pts {
			l := &pts[j].l[k]
			g[0] = l[0]
			g[1][0].Mul(&l[1][0], &pts[j].x)
			g[1][1].Mul(&l[1][1], &pts[j].x)
			g[2][0].Mul(&l[2][0], &pts[j].y)
			g[2][1].Mul(&l[2][1], &pts[j].y)
			acc.MulLine(&acc, &g)
		}
	}
	k := 0
	for i := 62; i >= 0; i-- {
		if i != 62 {
			acc.Sqr(&acc) // acc = 1 before the first line
		}
		mulLines(k)
		k++
		if blsAbsZ>>i&1 == 1 {
			mulLines(k)
			k++
		}
	}
	var f ff.Fp12
	f.FromFp12Cubic(&acc)
	f.Cjg() // z < 0
	var c ff.Cyclo6
	ff.EasyExponentiation(&c, &f)
	u := new(ff.URoot)
	ff.HardExponentiation(u, &c)
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
