package pairing

import (
	"crypto/subtle"
	"unsafe"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// Constant-time multiplication of a FIXED G1 point by a SECRET scalar with
// a precomputed table (fixed windows of 4 bits, no doublings): the Milagro
// CS client multiplies the same two points, A' and K', in every ClientHello
// (U = x·A', V = −(x+y)·K'), so it builds their tables once, in
// NewCSClient. A multiplication is 64 table lookups and 64 additions instead
// of circl's 256 doublings and 64 additions: about 3.5 times faster, which
// is most of a CS client's cost once sessions are resumed.
//
// Constant time: every lookup reads all 16 entries of its row and keeps
// one with a mask (no secret-dependent branch or address), and circl's
// G1.Add is a branch-free complete formula. The table of K' is as secret
// as K' itself; Zeroize clears it.

// g1Words is the size of a bls12381.G1 in 64-bit words: three Fp
// coordinates of six words, no pointers (checked by TestFixedBaseLayout).
const g1Words = int(unsafe.Sizeof(bls12381.G1{}) / 8)

// fixedBase holds j·16^i·P for i < 64, j < 16.
type fixedBase struct {
	t [64][16]bls12381.G1
}

// newFixedBase builds the table of p (about 4.5 scalar multiplications).
func newFixedBase(p *bls12381.G1) *fixedBase {
	fb := new(fixedBase)
	base := *p
	for i := range fb.t {
		row := &fb.t[i]
		row[0].SetIdentity()
		row[1] = base
		for j := 2; j < 16; j++ {
			row[j].Add(&row[j-1], &base)
		}
		for range 4 {
			base.Double()
		}
	}
	base = bls12381.G1{}
	return fb
}

// mul sets out = k·P in constant time.
func (fb *fixedBase) mul(out *bls12381.G1, k *bls12381.Scalar) {
	b, _ := k.MarshalBinary() // big-endian, 32 bytes
	var acc, sel bls12381.G1
	acc.SetIdentity()
	for i := range fb.t {
		d := (b[31-i/2] >> (4 * uint(i&1))) & 0xf
		selectG1(&sel, &fb.t[i], d)
		acc.Add(&acc, &sel)
	}
	clear(b)
	sel = bls12381.G1{}
	*out = acc
}

// selectG1 sets dst = row[idx], reading every entry.
func selectG1(dst *bls12381.G1, row *[16]bls12381.G1, idx uint8) {
	d := (*[g1Words]uint64)(unsafe.Pointer(dst))
	clear(d[:])
	for j := range row {
		m := -uint64(subtle.ConstantTimeByteEq(idx, uint8(j)))
		s := (*[g1Words]uint64)(unsafe.Pointer(&row[j]))
		for w := range d {
			d[w] |= s[w] & m
		}
	}
}

// zeroize clears the table.
func (fb *fixedBase) zeroize() {
	if fb != nil {
		fb.t = [64][16]bls12381.G1{}
	}
}
