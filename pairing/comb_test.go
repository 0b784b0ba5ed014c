package pairing

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// eMulTable (the blst engine's comb for public scalars) against circl's
// constant-time multiplication: every single bit of the 255, scalars that
// fill every tooth, the largest scalar and random ones.
func TestMulTableMatchesScalarMult(t *testing.T) {
	p := H1(DomainCS, []byte("comb"))
	tab := eTableOf(eG1From(p))
	if tab == nil {
		t.Fatal("no table for a non-identity point")
	}
	var ks []*bls12381.Scalar
	for i := 0; i < 255; i++ {
		var b [32]byte
		b[31-i/8] = 1 << (i % 8)
		k := new(bls12381.Scalar)
		k.SetBytes(b[:])
		ks = append(ks, k)
	}
	var rm1 bls12381.Scalar
	rm1.SetUint64(1)
	rm1.Neg()
	ones := new(bls12381.Scalar)
	ones.SetBytes(bytes.Repeat([]byte{0xff}, 32)) // reduced mod r
	ks = append(ks, new(bls12381.Scalar), &rm1, ones)
	rnd := seeded("comb")
	for i := 0; i < 64; i++ {
		k := new(bls12381.Scalar)
		if err := k.Random(rnd); err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	for _, k := range ks {
		var want bls12381.G1
		want.ScalarMult(k, p)
		var got eG1
		eMulTable(&got, k, tab)
		if !bytes.Equal(eBytesG1(&got), EncodeG1(&want)) {
			t.Fatalf("eMulTable(%v) differs from ScalarMult", k)
		}
	}
	var id bls12381.G1
	id.SetIdentity()
	if eTableOf(eG1From(&id)) != nil {
		t.Fatal("a table for the identity")
	}
}

// The server builds a table for A′ only at the second verified hello of
// that identity and day: bogus hellos cannot make it build and keep
// tables, and a client seen once costs none.
func TestCSTableOnlyAfterVerifiedHello(t *testing.T) {
	f := newFixture(t, seeded("comb-cs"))
	c, err := NewCSClient(f.alice, f.permit)
	if err != nil {
		t.Fatal(err)
	}
	entry := func() *csPoint {
		return f.server.points.get(string(transcript(nil).u64(f.day).id("alice@example.com")), func() *csPoint { return nil })
	}
	// A forged V (a valid group element, the wrong one).
	ok, err := csRun(t, c, f.server, f.now, func(h *CSHello, _, _ *[]byte) { h.V = h.U })
	if ok || !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("forged hello: %v %v", ok, err)
	}
	if a := entry(); a == nil || a.tab.Load() != nil {
		t.Fatalf("after a forged hello: entry %v, want a cached point without a table", a)
	}
	for i := 0; i < 3; i++ { // the second builds the table, the third uses it
		if ok, err := csRun(t, c, f.server, f.now, nil); !ok || err != nil {
			t.Fatalf("handshake %d: %v %v", i, ok, err)
		}
		if got := entry().tab.Load() != nil; got != (i > 0) {
			t.Fatalf("after %d verified hellos: table %v", i+1, got)
		}
	}
}
