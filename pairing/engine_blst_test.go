//go:build cgo

package pairing

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
	blst "github.com/supranational/blst/bindings/go"
)

// The blst engine against circl (always compiled) and against the blst
// binding's own Miller loop.

func TestBlstHashMatchesCircl(t *testing.T) {
	for _, d := range []Domain{DomainCS, DomainP2P, DomainTP} {
		for _, m := range hashMsgs {
			if got, want := eBytesG1(eHashG1(d, []byte(m))), EncodeG1(H1(d, []byte(m))); !bytes.Equal(got, want) {
				t.Fatalf("H1_%s(%q): blst %x, circl %x", d, m, got, want)
			}
			if got, want := eBytesG2(eHashG2(d, []byte(m))), EncodeG2(H2(d, []byte(m))); !bytes.Equal(got, want) {
				t.Fatalf("H2_%s(%q): blst %x, circl %x", d, m, got, want)
			}
		}
	}
	if got, want := eBytesG1(eHashG1(DomainCS, nil)), EncodeG1(H1(DomainCS, nil)); !bytes.Equal(got, want) {
		t.Fatal("H1(nil) differs")
	}
}

func testScalars(t *testing.T, label string, n int) []*bls12381.Scalar {
	rnd := seeded(label)
	var rm1 bls12381.Scalar
	rm1.SetUint64(1)
	rm1.Neg()
	ks := []*bls12381.Scalar{sc(0), sc(1), sc(2), sc(15), sc(16), sc(0xffffffffffffffff), &rm1}
	for i := 0; i < n; i++ {
		k := new(bls12381.Scalar)
		if err := k.Random(rnd); err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	return ks
}

func TestBlstArithmeticMatchesCircl(t *testing.T) {
	p := H1(DomainCS, []byte("mul"))
	q := H2(DomainP2P, []byte("mul"))
	pe, qe := eG1From(p), eG2From(q)
	for _, k := range testScalars(t, "blst-mul", 16) {
		var want bls12381.G1
		want.ScalarMult(k, p)
		var got, gotPub eG1
		eMul(&got, k, pe)
		eMulPublic(&gotPub, k, pe)
		if !bytes.Equal(eBytesG1(&got), EncodeG1(&want)) || !bytes.Equal(eBytesG1(&gotPub), EncodeG1(&want)) {
			t.Fatalf("G1 mul by %v differs", k)
		}
		if k.IsZero() == 1 != eIsIdentity(&got) {
			t.Fatalf("identity of 0·P")
		}
		var want2 bls12381.G2
		want2.ScalarMult(k, q)
		var got2 eG2
		eMulG2(&got2, k, qe)
		if !bytes.Equal(eBytesG2(&got2), EncodeG2(&want2)) {
			t.Fatalf("G2 mul by %v differs", k)
		}
		// Addition, including P + P and P + (−P) = O.
		var sum, wantSum bls12381.G1
		eAdd(&got, &got, pe)
		wantSum.Add(&want, p)
		if !bytes.Equal(eBytesG1(&got), EncodeG1(&wantSum)) {
			t.Fatal("add differs")
		}
		_ = sum
	}
	var dbl, o eG1
	eAdd(&dbl, pe, pe)
	var want bls12381.G1
	want.Add(p, p)
	if !bytes.Equal(eBytesG1(&dbl), EncodeG1(&want)) {
		t.Fatal("doubling differs")
	}
	var rm1 bls12381.Scalar
	rm1.SetUint64(1)
	rm1.Neg()
	eMul(&o, &rm1, pe)
	eAdd(&o, &o, pe)
	if !eIsIdentity(&o) {
		t.Fatal("P + (−P) is not the identity")
	}
}

// bindingPair computes Π e(p_i, q_i) with the blst binding's own Miller
// loop and final exponentiation.
func bindingPair(t *testing.T, ps []*bls12381.G1, qs []*bls12381.G2) []byte {
	f := blst.Fp12One()
	for i := range ps {
		pa := new(blst.P1Affine).Uncompress(EncodeG1(ps[i]))
		qa := new(blst.P2Affine).Uncompress(EncodeG2(qs[i]))
		if pa == nil || qa == nil {
			t.Fatal("binding rejected a point")
		}
		f.MulAssign(blst.Fp12MillerLoop(qa, pa))
	}
	f.FinalExp()
	return gtBytes((*eGT)(unsafe.Pointer(&f)))
}

func TestBlstPairMatchesCirclAndBinding(t *testing.T) {
	rnd := seeded("blst-pair")
	for i := 0; i < 4; i++ {
		var a, b bls12381.Scalar
		a.Random(rnd)
		b.Random(rnd)
		var p1, p2 bls12381.G1
		var q1, q2 bls12381.G2
		p1.ScalarMult(&a, bls12381.G1Generator())
		p2.ScalarMult(&b, H1(DomainCS, []byte{byte(i)}))
		q1.ScalarMult(&b, bls12381.G2Generator())
		q2.ScalarMult(&a, H2(DomainP2P, []byte{byte(i)}))
		l1, l2 := ePrepare(eG2From(&q1)), ePrepare(eG2From(&q2))
		e1, e2 := eG1From(&p1), eG1From(&p2)

		want1 := EncodeGT(bls12381.Pair(&p1, &q1))
		for name, got := range map[string][]byte{
			"ePair":   gtBytes(ePair([]*eG1{e1}, []*eLines{l1})),
			"binding": bindingPair(t, []*bls12381.G1{&p1}, []*bls12381.G2{&q1}),
		} {
			if !bytes.Equal(got, want1) {
				t.Fatalf("single pairing: %s differs from circl", name)
			}
		}
		want2 := EncodeGT(bls12381.ProdPairFrac([]*bls12381.G1{&p1, &p2}, []*bls12381.G2{&q1, &q2}, []int{1, 1}))
		for name, got := range map[string][]byte{
			"ePair":       gtBytes(ePair([]*eG1{e1, e2}, []*eLines{l1, l2})),
			"ePairFresh":  gtBytes(ePairFresh(e1, l1, e2, eG2From(&q2))),
			"binding":     bindingPair(t, []*bls12381.G1{&p1, &p2}, []*bls12381.G2{&q1, &q2}),
			"circl lines": gtBytes(multiPair([]*bls12381.G1{&p1, &p2}, []*g2Lines{prepareG2(&q1), prepareG2(&q2)})),
		} {
			if !bytes.Equal(got, want2) {
				t.Fatalf("2-pair product: %s differs from circl", name)
			}
		}
		// Identity G1 points contribute 1.
		var o eG1
		if !eGTIsOne(ePair([]*eG1{&o}, []*eLines{l1})) || !eGTIsOne(ePair([]*eG1{&o, &o}, []*eLines{l1, l2})) {
			t.Fatal("e(O, Q) != 1")
		}
		if !bytes.Equal(gtBytes(ePair([]*eG1{&o, e1}, []*eLines{l2, l1})), want1) ||
			!bytes.Equal(gtBytes(ePair([]*eG1{e1, &o}, []*eLines{l1, l2})), want1) {
			t.Fatal("identity not skipped")
		}
		var o2 eG2
		if !bytes.Equal(gtBytes(ePairFresh(e1, l1, &o, eG2From(&q2))), want1) ||
			!bytes.Equal(gtBytes(ePairFresh(e1, l1, e2, &o2)), want1) {
			t.Fatal("ePairFresh: identity not skipped")
		}
		// e(P, Q)·e(−P, Q) = 1: the check Verify makes.
		var rm1 bls12381.Scalar
		rm1.SetUint64(1)
		rm1.Neg()
		var neg eG1
		eMul(&neg, &rm1, e1)
		if !eGTIsOne(ePair([]*eG1{e1, &neg}, []*eLines{l1, l1})) {
			t.Fatal("e(P,Q)·e(−P,Q) != 1")
		}
		if eGTIsOne(ePair([]*eG1{e1, e1}, []*eLines{l1, l1})) {
			t.Fatal("e(P,Q)² = 1")
		}

		// GT exponentiation against circl's Gt.Exp.
		g := bls12381.Pair(&p1, &q1)
		ge := ePair([]*eG1{e1}, []*eLines{l1})
		for _, n := range testScalars(t, "blst-gtexp", 3) {
			var w bls12381.Gt
			w.Exp(g, n)
			if !bytes.Equal(gtBytes(eGTExp(ge, n)), EncodeGT(&w)) {
				t.Fatalf("eGTExp differs for %v", n)
			}
		}
	}
}

// TestBlstGTLayout checks the Fp12 coefficient order on arbitrary field
// elements (not only pairing values): the same bytes decoded by both
// engines and multiplied give the same bytes.
func TestBlstGTLayout(t *testing.T) {
	rnd := seeded("blst-fp12")
	randFp12 := func() []byte {
		b := make([]byte, 576)
		rnd.Read(b)
		for k := 0; k < 12; k++ {
			b[48*k] &= 0x0f // < p
		}
		return b
	}
	for i := 0; i < 32; i++ {
		ab, bb := randFp12(), randFp12()
		var a, b, c ff.Fp12
		if a.UnmarshalBinary(ab) != nil || b.UnmarshalBinary(bb) != nil {
			t.Fatal("circl rejected an Fp12 element")
		}
		c.Mul(&a, &b)
		want, _ := c.MarshalBinary()
		ea, eb := eGTFromBytes(ab), eGTFromBytes(bb)
		if !bytes.Equal(gtBytes(ea), ab) {
			t.Fatal("Fp12 bytes do not round-trip")
		}
		if got := gtBytes(eGTMul(ea, eb)); !bytes.Equal(got, want) {
			t.Fatalf("Fp12 product differs: the coefficient order is wrong")
		}
	}
}

// TestBlstGTExpDigits checks the Frobenius exponentiation on exponents at
// the edges of its base-|z| digits (|z|^k, |z|^k ± 1, digits all |z|−1)
// against circl's Gt.Exp and the plain windowed exponentiation.
func TestBlstGTExpDigits(t *testing.T) {
	p := H1(DomainCS, []byte("gtexp"))
	q := H2(DomainCS, []byte("gtexp"))
	g := bls12381.Pair(p, q)
	ge := ePair([]*eG1{eG1From(p)}, []*eLines{ePrepare(eG2From(q))})
	absz := sc(0xd201000000010000)
	one := sc(1)
	var ns []*bls12381.Scalar
	pow := sc(1)
	for k := 1; k <= 4; k++ {
		next := new(bls12381.Scalar)
		next.Mul(pow, absz)
		pow = next
		lo, hi := new(bls12381.Scalar), new(bls12381.Scalar)
		lo.Sub(pow, one)
		hi.Add(pow, one)
		ns = append(ns, pow, lo, hi)
	}
	// Digits (|z|−1, |z|−1, |z|−1, 1): 2·|z|³ − 1.
	z3 := new(bls12381.Scalar)
	z3.Mul(absz, absz)
	z3.Mul(z3, absz)
	m := new(bls12381.Scalar)
	m.Add(z3, z3)
	m.Sub(m, one)
	ns = append(ns, m)
	ns = append(ns, testScalars(t, "blst-gtexp-digits", 24)...)
	for _, n := range ns {
		var w bls12381.Gt
		w.Exp(g, n)
		want := EncodeGT(&w)
		if got := gtBytes(eGTExp(ge, n)); !bytes.Equal(got, want) {
			t.Fatalf("eGTExp differs for %v", n)
		}
		if got := gtBytes(eGTExpWindowed(ge, n)); !bytes.Equal(got, want) {
			t.Fatalf("eGTExpWindowed differs for %v", n)
		}
	}
}
