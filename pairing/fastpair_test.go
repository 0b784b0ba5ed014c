package pairing

import (
	"bytes"
	"testing"

	"github.com/cloudflare/circl/ecc/bls12381"
)

func TestMultiPairMatchesCircl(t *testing.T) {
	rnd := seeded("multipair")
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
		want := EncodeGT(bls12381.Pair(&p1, &q1))
		if got := gtBytes(multiPair([]*bls12381.G1{&p1}, []*g2Lines{prepareG2(&q1)})); !bytes.Equal(got, want) {
			t.Fatalf("single pairing differs")
		}
		want2 := EncodeGT(bls12381.ProdPairFrac([]*bls12381.G1{&p1, &p2}, []*bls12381.G2{&q1, &q2}, []int{1, 1}))
		if got := gtBytes(multiPair([]*bls12381.G1{&p1, &p2}, []*g2Lines{prepareG2(&q1), prepareG2(&q2)})); !bytes.Equal(got, want2) {
			t.Fatalf("product of pairings differs")
		}
		// gtExp against circl's Gt.Exp, including 0 and r-1.
		g := bls12381.Pair(&p1, &q1)
		gu := gtFromCircl(g)
		var rm1 bls12381.Scalar
		rm1.SetUint64(1)
		rm1.Neg()
		for _, n := range []*bls12381.Scalar{&a, sc(0), sc(1), sc(16), &rm1} {
			var w bls12381.Gt
			w.Exp(g, n)
			if !bytes.Equal(gtBytes(gtExp(&gu, n)), EncodeGT(&w)) {
				t.Fatalf("gtExp differs for %v", n)
			}
		}
	}
}

func TestMultiPairIdentity(t *testing.T) {
	var o bls12381.G1
	o.SetIdentity()
	p := H1(DomainCS, []byte("p"))
	l := generatorLines()
	if multiPair([]*bls12381.G1{&o}, []*g2Lines{l}).IsIdentity() != 1 {
		t.Fatal("e(O, Q) != 1")
	}
	want := gtBytes(multiPair([]*bls12381.G1{p}, []*g2Lines{l}))
	if !bytes.Equal(gtBytes(multiPair([]*bls12381.G1{&o, p}, []*g2Lines{l, l})), want) {
		t.Fatal("identity not skipped")
	}
	var oq bls12381.G2
	oq.SetIdentity()
	if !bytes.Equal(gtBytes(multiPair([]*bls12381.G1{p, p}, []*g2Lines{l, prepareG2(&oq)})), want) {
		t.Fatal("identity G2 not skipped")
	}
}

func TestMulPublic(t *testing.T) {
	rnd := seeded("wnaf")
	p := H1(DomainCS, []byte("wnaf"))
	var rm1 bls12381.Scalar
	rm1.SetUint64(1)
	rm1.Neg()
	ks := []*bls12381.Scalar{sc(0), sc(1), sc(15), sc(16), sc(17), sc(31), sc(0xffffffffffffffff), &rm1}
	for i := 0; i < 50; i++ {
		var k bls12381.Scalar
		k.Random(rnd)
		ks = append(ks, &k)
	}
	for _, k := range ks {
		var want, got bls12381.G1
		want.ScalarMult(k, p)
		mulPublic(&got, k, p)
		if !got.IsEqual(&want) {
			t.Fatalf("mulPublic(%v) differs", k)
		}
	}
}
