package pairing

import (
	"encoding/binary"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// Variable-time multiplication by PUBLIC scalars (the hash outputs y, h,
// π_S, π_C), with a width-5 NAF. Its running time depends on the scalar
// only; the point may be secret, since circl's Add and Double are
// branch-free complete formulas. Never call it with a secret scalar: use
// G1.ScalarMult (fixed windows, constant time) for those.

// wnaf5 returns the width-5 NAF digits of k (least significant first).
func wnaf5(k *bls12381.Scalar) []int8 {
	b, _ := k.MarshalBinary()
	var d [5]uint64 // little-endian limbs, one spare for carries
	for i := 0; i < 4; i++ {
		d[i] = binary.BigEndian.Uint64(b[24-8*i:])
	}
	isZero := func() bool { return d[0]|d[1]|d[2]|d[3]|d[4] == 0 }
	out := make([]int8, 0, 260)
	for !isZero() {
		var digit int64
		if d[0]&1 == 1 {
			digit = int64(d[0] & 31)
			if digit >= 16 {
				digit -= 32
			}
			// d -= digit
			if digit > 0 {
				var borrow uint64 = uint64(digit)
				for i := 0; i < 5 && borrow != 0; i++ {
					old := d[i]
					d[i] -= borrow
					borrow = 0
					if d[i] > old {
						borrow = 1
					}
				}
			} else {
				var carry uint64 = uint64(-digit)
				for i := 0; i < 5 && carry != 0; i++ {
					old := d[i]
					d[i] += carry
					carry = 0
					if d[i] < old {
						carry = 1
					}
				}
			}
		}
		out = append(out, int8(digit))
		for i := 0; i < 4; i++ {
			d[i] = d[i]>>1 | d[i+1]<<63
		}
		d[4] >>= 1
	}
	return out
}

// mulPublic sets out = k·P for a public scalar k.
func mulPublic(out *bls12381.G1, k *bls12381.Scalar, P *bls12381.G1) {
	digits := wnaf5(k)
	var table [8]bls12381.G1 // P, 3P, …, 15P
	var p2 bls12381.G1
	table[0] = *P
	p2 = *P
	p2.Double()
	for i := 1; i < 8; i++ {
		table[i].Add(&table[i-1], &p2)
	}
	var q bls12381.G1
	q.SetIdentity()
	for i := len(digits) - 1; i >= 0; i-- {
		q.Double()
		if d := digits[i]; d > 0 {
			q.Add(&q, &table[d/2])
		} else if d < 0 {
			t := table[(-d)/2]
			t.Neg()
			q.Add(&q, &t)
		}
	}
	*out = q
}
