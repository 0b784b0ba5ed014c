package pairing

import (
	"crypto/subtle"
	"sync"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
)

// A multi-pairing with precomputed Miller-loop lines for fixed G2 arguments
// (Q, K_S, K2_C) and one shared accumulator and final exponentiation. It
// follows circl's own Miller loop (bls12381/pair.go, ec2.go) step for step,
// built from the exported field arithmetic of circl's ff package; tests
// check it against bls12381.Pair.

// g2Proj is a projective G2 point (X:Y:Z) on the twist y² = x³ + 4(1+u).
type g2Proj struct{ x, y, z ff.Fp2 }

// g2Lines are the 68 line coefficients of the Miller loop of one G2 point.
type g2Lines [68][3]ff.Fp2

var g2B3 = func() (b ff.Fp2) { b[0].SetUint64(12); b[1].SetUint64(12); return }()

// isAddStep reports the bits of |x| (the BLS parameter) after the leading one.
func isAddStep(i int) bool { return i == 62 || i == 60 || i == 57 || i == 48 || i == 16 }

// prepareG2 computes the line coefficients of q (not the identity).
func prepareG2(q *bls12381.G2) *g2Lines {
	b := q.Bytes() // affine: x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0
	var Q g2Proj
	if Q.x.UnmarshalBinary(b[:96]) != nil || Q.y.UnmarshalBinary(b[96:]) != nil {
		panic("pairing: unreachable: circl encoded a non-canonical G2 point")
	}
	Q.z.SetOne()
	T := Q
	ls := new(g2Lines)
	n := 0
	for i := 62; i >= 0; i-- {
		doubleAndLine(&T, &ls[n])
		n++
		if isAddStep(i) {
			addAndLine(&T, &T, &Q, &ls[n])
			n++
		}
	}
	return ls
}

func doubleAndLine(P *g2Proj, l *[3]ff.Fp2) {
	var R g2Proj
	X, Y, Z := &P.x, &P.y, &P.z
	var A, B, C, D, E, F, G, T ff.Fp2
	B.Sqr(Y)
	C.Sqr(Z)
	D.Mul(&g2B3, &C)
	F.Add(Y, Z)
	F.Sqr(&F)
	F.Sub(&F, &B)
	F.Sub(&F, &C)
	A.Sqr(X)
	E.Add(X, Y)
	E.Sqr(&E)
	E.Sub(&E, &A)
	E.Sub(&E, &B)
	l[0].Add(&A, &A)
	l[0].Add(&l[0], &A)
	l[1] = F
	l[1].Neg()
	l[2].Sub(&D, &B)
	T.Add(&D, &D)
	G.Add(&T, &D)
	R.x.Sub(&B, &G)
	R.x.Mul(&R.x, &E)
	T.Sqr(&T)
	R.y.Add(&B, &G)
	R.y.Sqr(&R.y)
	R.y.Sub(&R.y, &T)
	R.y.Sub(&R.y, &T)
	R.y.Sub(&R.y, &T)
	R.z.Mul(&B, &F)
	R.z.Add(&R.z, &R.z)
	R.z.Add(&R.z, &R.z)
	*P = R
}

func addAndLine(PQ, P, Q *g2Proj, l *[3]ff.Fp2) {
	var R g2Proj
	X1, Y1, Z1 := &P.x, &P.y, &P.z
	X2, Y2, Z2 := &Q.x, &Q.y, &Q.z
	var X1X2, Y1Y2, Z1Z2, b3Z1Z2, A, B, C, D, E, F, G, EE, FF, t0, t1 ff.Fp2
	X1X2.Mul(X1, X2)
	Y1Y2.Mul(Y1, Y2)
	Z1Z2.Mul(Z1, Z2)
	b3Z1Z2.Mul(&Z1Z2, &g2B3)
	A.Add(&X1X2, &X1X2)
	A.Add(&A, &X1X2)
	B.Add(&Y1Y2, &b3Z1Z2)
	C.Sub(&Y1Y2, &b3Z1Z2)
	t0.Add(X1, Y1)
	D.Add(X2, Y2)
	D.Mul(&D, &t0)
	D.Sub(&D, &X1X2)
	D.Sub(&D, &Y1Y2)
	t0.Mul(Y1, Z2)
	t1.Mul(Y2, Z1)
	E.Add(&t0, &t1)
	EE.Sub(&t0, &t1)
	t0.Mul(X1, Z2)
	t1.Mul(X2, Z1)
	F.Add(&t0, &t1)
	FF.Sub(&t0, &t1)
	l[0].Mul(&EE, Z2)
	l[0].Neg()
	l[1].Mul(&FF, Z2)
	t0.Mul(&FF, Y2)
	l[2].Mul(&EE, X2)
	l[2].Sub(&l[2], &t0)
	G.Mul(&F, &g2B3)
	t0.Mul(&E, &G)
	R.x.Mul(&D, &C)
	R.x.Sub(&R.x, &t0)
	t0.Mul(&A, &G)
	R.y.Mul(&B, &C)
	R.y.Add(&R.y, &t0)
	t0.Mul(&A, &D)
	R.z.Mul(&E, &B)
	R.z.Add(&R.z, &t0)
	*PQ = R
}

// g1Affine returns the affine coordinates of p (not the identity).
func g1Affine(p *bls12381.G1) (x, y ff.Fp) {
	b := p.Bytes()
	if x.UnmarshalBinary(b[:48]) != nil || y.UnmarshalBinary(b[48:]) != nil {
		panic("pairing: unreachable: circl encoded a non-canonical G1 point")
	}
	return
}

// multiPair returns Π e(ps[i], qs[i]) with one Miller loop over a shared
// accumulator and one final exponentiation. Pairs whose G1 point is the
// identity contribute 1 and are skipped.
func multiPair(ps []*bls12381.G1, qs []*g2Lines) *ff.URoot {
	var xs, ys []ff.Fp2
	var ls []*g2Lines
	for i, p := range ps {
		if p.IsIdentity() {
			continue
		}
		var x, y ff.Fp2
		x[0], y[0] = g1Affine(p)
		xs, ys, ls = append(xs, x), append(ys, y), append(ls, qs[i])
	}
	var acc ff.Fp12Cubic
	acc.SetOne()
	var g ff.LineValue
	eval := func(l *[3]ff.Fp2, j int) {
		g[1].Mul(&l[0], &xs[j])
		g[2].Mul(&l[1], &ys[j])
		g[0] = l[2]
		// Lines never vanish at points of G1 other than the identity;
		// circl's guard, kept for equality with bls12381.Pair.
		if g[0].IsZero()&g[1].IsZero()&g[2].IsZero() == 1 {
			g[0].SetOne()
		}
		acc.MulLine(&acc, &g)
	}
	n := 0
	for i := 62; i >= 0; i-- {
		acc.Sqr(&acc)
		for j := range ls {
			eval(&ls[j][n], j)
		}
		n++
		if isAddStep(i) {
			for j := range ls {
				eval(&ls[j][n], j)
			}
			n++
		}
	}
	var f ff.Fp12
	f.FromFp12Cubic(&acc)
	f.Cjg()
	var c ff.Cyclo6
	ff.EasyExponentiation(&c, &f)
	u := new(ff.URoot)
	ff.HardExponentiation(u, &c)
	return u
}

// circlGTBytes is GT(g) of spec §1 (the same bytes as circl's Gt.MarshalBinary).
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
