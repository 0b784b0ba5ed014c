package pairing

import (
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"
	"unsafe"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// The word-wise constant-time select relies on G1 being 18 words of field
// data and nothing else.
func TestFixedBaseLayout(t *testing.T) {
	if unsafe.Sizeof(bls12381.G1{}) != 144 || g1Words != 18 {
		t.Fatalf("bls12381.G1 is %d bytes; the fixed-base select assumes 144 (three 48-byte coordinates)", unsafe.Sizeof(bls12381.G1{}))
	}
}

// The table gives circl's ScalarMult result for random and edge scalars.
func TestFixedBaseMul(t *testing.T) {
	var p bls12381.G1
	var k0 bls12381.Scalar
	k0.Random(rand.Reader)
	p.ScalarMult(&k0, bls12381.G1Generator())
	fb := newFixedBase(&p)
	check := func(k *bls12381.Scalar) {
		t.Helper()
		var want, got bls12381.G1
		want.ScalarMult(k, &p)
		fb.mul(&got, k)
		if !got.IsEqual(&want) {
			kb, _ := k.MarshalBinary()
			t.Fatalf("k = %x: table result differs from ScalarMult", kb)
		}
	}
	var k bls12381.Scalar
	for _, v := range []uint64{0, 1, 2, 15, 16, 17, 255, 256, 1<<64 - 1} {
		k.SetUint64(v)
		check(&k)
	}
	k.SetUint64(1)
	k.Neg() // r − 1
	check(&k)
	for range 200 {
		k.Random(rand.Reader)
		check(&k)
	}
	// Every nibble value in every window position.
	for i := 0; i < 64; i++ {
		var b [32]byte
		for j := range b {
			b[j] = byte(0x11 * ((i + j) % 16))
		}
		b[0] &= 0x3f // below r
		if err := k.UnmarshalBinary(b[:]); err != nil {
			t.Fatal(err)
		}
		check(&k)
	}
}

func BenchmarkFixedBaseMul(b *testing.B) {
	var k bls12381.Scalar
	k.Random(rand.Reader)
	p := bls12381.G1Generator()
	fb := newFixedBase(p)
	var out bls12381.G1
	b.Run("table", func(b *testing.B) {
		for range b.N {
			fb.mul(&out, &k)
		}
	})
	b.Run("ScalarMult", func(b *testing.B) {
		for range b.N {
			out.ScalarMult(&k, p)
		}
	})
}

// A CS client's hellos are the same with and without the tables (the
// first Hello has none; later ones use them).
func TestCSHelloTables(t *testing.T) {
	f := newFixture(t, mrand.NewChaCha8([32]byte{7}))
	c, err := NewCSClient(f.alice, f.permit)
	if err != nil {
		t.Fatal(err)
	}
	var first *CSHello
	for i := 0; i < 3; i++ {
		var x bls12381.Scalar
		x.SetUint64(0x1234567890abcdef)
		h, _ := c.helloWith(&x, 1763769600, "")
		if i == 0 {
			first = h
			if c.tab.fa != nil {
				t.Fatal("tables built at the first Hello")
			}
			continue
		}
		if c.tab.fa == nil || c.tab.fk == nil {
			t.Fatal("no tables after the second Hello")
		}
		if string(h.U) != string(first.U) || string(h.V) != string(first.V) {
			t.Fatalf("hello %d differs with the tables", i)
		}
	}
}
