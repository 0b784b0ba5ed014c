//go:build cgo

package pairing

// The blst engine (github.com/supranational/blst, constant-time, audited),
// used whenever cgo is on. The blst Go binding compiles the library; the
// small C helpers below call blst's exported C API (declared once, in
// blst_api.h) for what the binding does not offer: Miller loops from
// precomputed lines, GT exponentiation and GT encoding in circl's order.
//
// Build hygiene: the binding compiles blst for ADX-capable CPUs unless
// CGO_CFLAGS carries -D__BLST_PORTABLE__ (then blst picks the code path at
// run time). The Makefile sets CGO_CFLAGS="-O2 -D__BLST_PORTABLE__"; see
// Portable.

/*
#include "blst_api.h"

static int mg_portable(void) {
#ifdef __BLST_PORTABLE__
	return 1;
#else
	return 0;
#endif
}

// mg_g1_decode: 0 on success, else blst's error (1 encoding, 2 not on the
// curve, 3 not in the subgroup).
static int mg_g1_decode(blst_p1 *out, const byte in[48]) {
	blst_p1_affine a;
	int err = blst_p1_uncompress(&a, in);
	if (err != 0) return err;
	if (!blst_p1_affine_in_g1(&a)) return 3;
	blst_p1_from_affine(out, &a);
	return 0;
}

static int mg_g2_decode(blst_p2 *out, const byte in[96]) {
	blst_p2_affine a;
	int err = blst_p2_uncompress(&a, in);
	if (err != 0) return err;
	if (!blst_p2_affine_in_g2(&a)) return 3;
	blst_p2_from_affine(out, &a);
	return 0;
}

// mg_gt_exp sets ret = x^n for x in the cyclotomic subgroup and n a 32-byte
// big-endian scalar, in constant time: fixed 4-bit windows, table look-up
// by masks, cyclotomic squarings.
static void mg_gt_exp(blst_fp12 *ret, const blst_fp12 *x, const byte n[32]) {
	blst_fp12 table[16], z, t;
	table[0] = *blst_fp12_one();
	table[1] = *x;
	for (int i = 2; i < 16; i++) blst_fp12_mul(&table[i], &table[i-1], x);
	z = *blst_fp12_one();
	for (int i = 0; i < 64; i++) {
		if (i > 0) {
			for (int k = 0; k < 4; k++) blst_fp12_cyclotomic_sqr(&z, &z);
		}
		limb_t idx = (i & 1) ? (n[i/2] & 0xf) : (n[i/2] >> 4);
		limb_t *tl = (limb_t *)&t;
		for (size_t w = 0; w < sizeof(t)/sizeof(limb_t); w++) tl[w] = 0;
		for (limb_t j = 0; j < 16; j++) {
			limb_t d = idx ^ j;
			limb_t mask = ((d | (0 - d)) >> 63) - 1; // all ones iff idx == j
			const limb_t *sl = (const limb_t *)&table[j];
			for (size_t w = 0; w < sizeof(t)/sizeof(limb_t); w++) tl[w] |= sl[w] & mask;
		}
		blst_fp12_mul(&z, &z, &t);
	}
	*ret = z;
	volatile limb_t *vt = (volatile limb_t *)table;
	for (size_t w = 0; w < sizeof(table)/sizeof(limb_t); w++) vt[w] = 0;
	vt = (volatile limb_t *)&t;
	for (size_t w = 0; w < sizeof(t)/sizeof(limb_t); w++) vt[w] = 0;
}

// mg_gt_exp_frob is mg_gt_exp for x in GT (order r), four times fewer
// squarings: since p ≡ z (mod r) for the BLS parameter z = -|z|, the
// Frobenius map raises an element of GT to the power z. Writing
// n = d0 + d1·|z| + d2·|z|² + d3·|z|³ (digits < |z| < 2^64, by a
// constant-time restoring division), x^n = Π g_i^{d_i} with
// g_i = x^{|z|^i} = conj^i(frob^i(x)), computed by one joint
// square-and-multiply over the 64 digit bits with a 16-entry table of the
// products of the g_i, read by masks.
static const uint64_t mg_absz = 0xd201000000010000ULL;

static void mg_divmod_absz(uint64_t q[4], uint64_t *rem, const uint64_t n[4]) {
	uint64_t r = 0;
	for (int i = 3; i >= 0; i--) q[i] = 0;
	for (int bit = 255; bit >= 0; bit--) {
		uint64_t carry = r >> 63;
		r = (r << 1) | ((n[bit/64] >> (bit%64)) & 1);
		uint64_t diff = r - mg_absz;
		uint64_t borrow = (r ^ ((r ^ mg_absz) | (diff ^ r))) >> 63; // r < |z|
		uint64_t ge = carry | (borrow ^ 1);
		uint64_t mask = 0 - ge;
		r = (r & ~mask) | (diff & mask);
		q[bit/64] |= ge << (bit%64);
	}
	*rem = r;
}

static void mg_gt_exp_frob(blst_fp12 *ret, const blst_fp12 *x, const byte nbe[32]) {
	uint64_t n[4], q[4], d[4];
	for (int i = 0; i < 4; i++) {
		uint64_t w = 0;
		for (int j = 0; j < 8; j++) w = (w << 8) | nbe[8*(3-i) + j];
		n[i] = w;
	}
	for (int k = 0; k < 3; k++) {
		mg_divmod_absz(q, &d[k], n);
		for (int i = 0; i < 4; i++) n[i] = q[i];
	}
	d[3] = n[0]; // n < |z|^4: the last quotient is one digit
	blst_fp12 g[4], table[16], z, t;
	g[0] = *x;
	for (int i = 1; i < 4; i++) {
		blst_fp12_frobenius_map(&g[i], &g[i-1], 1);
		blst_fp12_conjugate(&g[i]); // x^{|z|} = (x^z)^{-1}
	}
	table[0] = *blst_fp12_one();
	for (int idx = 1; idx < 16; idx++) {
		int low = idx & (0 - idx); // lowest set bit
		int i = low == 1 ? 0 : low == 2 ? 1 : low == 4 ? 2 : 3; // public index
		if (idx == low) table[idx] = g[i];
		else blst_fp12_mul(&table[idx], &table[idx ^ low], &g[i]);
	}
	z = *blst_fp12_one();
	for (int bit = 63; bit >= 0; bit--) {
		if (bit != 63) blst_fp12_cyclotomic_sqr(&z, &z);
		limb_t idx = ((d[0] >> bit) & 1) | (((d[1] >> bit) & 1) << 1) |
		             (((d[2] >> bit) & 1) << 2) | (((d[3] >> bit) & 1) << 3);
		limb_t *tl = (limb_t *)&t;
		for (size_t w = 0; w < sizeof(t)/sizeof(limb_t); w++) tl[w] = 0;
		for (limb_t j = 0; j < 16; j++) {
			limb_t e = idx ^ j;
			limb_t mask = ((e | (0 - e)) >> 63) - 1; // all ones iff idx == j
			const limb_t *sl = (const limb_t *)&table[j];
			for (size_t w = 0; w < sizeof(t)/sizeof(limb_t); w++) tl[w] |= sl[w] & mask;
		}
		blst_fp12_mul(&z, &z, &t);
	}
	*ret = z;
	volatile uint64_t *vd = d;
	for (int i = 0; i < 4; i++) vd[i] = 0, n[i] = 0, q[i] = 0;
	volatile limb_t *vt = (volatile limb_t *)table;
	for (size_t w = 0; w < sizeof(table)/sizeof(limb_t); w++) vt[w] = 0;
	vt = (volatile limb_t *)&t;
	for (size_t w = 0; w < sizeof(t)/sizeof(limb_t); w++) vt[w] = 0;
	vt = (volatile limb_t *)g;
	for (size_t w = 0; w < sizeof(g)/sizeof(limb_t); w++) vt[w] = 0;
}

// mg_gt_bytes writes GT(g) of docs/protocol.md §1: circl's Fp12 encoding, which lists
// the twelve Fp coefficients in the reverse of blst's memory order, each
// big-endian.
static void mg_gt_bytes(byte out[576], const blst_fp12 *g) {
	const blst_fp *c = (const blst_fp *)g;
	for (int k = 0; k < 12; k++) blst_bendian_from_fp(out + 48*k, &c[11-k]);
}

// mg_gt_from_bytes is the inverse of mg_gt_bytes (tests only; no checks).
static void mg_gt_from_bytes(blst_fp12 *g, const byte in[576]) {
	blst_fp *c = (blst_fp *)g;
	for (int k = 0; k < 12; k++) blst_fp_from_bendian(&c[11-k], in + 48*k);
}
*/
import "C"

import (
	"unsafe"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
	_ "github.com/supranational/blst/bindings/go" // compiles and links the blst C library
)

const engineName = "blst"

// enginePortable reports whether blst was compiled with __BLST_PORTABLE__
// (run-time CPU detection instead of assuming ADX).
var enginePortable = C.mg_portable() == 1

// eG1 and eG2 are projective points, eGT an element of GT, all in blst's
// representation (eLines: engine_blst_miller.go).
type (
	eG1 struct{ p C.blst_p1 }
	eG2 struct{ p C.blst_p2 }
	eGT struct{ f C.blst_fp12 }
)

// gtAny admits both engines' GT elements to gtBytes (circl's code is
// always compiled, and tests compare the two).
type gtAny interface{ *ff.URoot | *eGT }

func bptr(b []byte) *C.byte { return (*C.byte)(unsafe.Pointer(unsafe.SliceData(b))) }

// leScalar returns the little-endian bytes of k (blst's scalar order);
// the caller clears them.
func leScalar(k *bls12381.Scalar) [32]byte {
	be, _ := k.MarshalBinary()
	var le [32]byte
	for i := range le {
		le[i] = be[31-i]
	}
	clear(be)
	return le
}

// eDecodeG1 is DecodeG1 into the engine's representation: the Go-side
// format checks first, then blst's decompression and subgroup check; on
// any blst failure the Go decoder classifies the error, so both engines
// return the same error for every input.
func eDecodeG1(b []byte) (*eG1, error) {
	x, err := checkHeader(b, G1Size, "G1")
	if err != nil {
		return nil, err
	}
	clear(x) // a copy of b, which may be a secret (a permit share)
	p := new(eG1)
	if C.mg_g1_decode(&p.p, bptr(b)) != 0 {
		if _, err := DecodeG1(b); err != nil {
			return nil, err
		}
		// Unreachable (the tests and FuzzEngineDecode compare the two);
		// never panic on peer input.
		return nil, decodeErr("G1: rejected by blst, accepted by circl", ErrNonCanonical)
	}
	return p, nil
}

// eDecodeG2 is DecodeG2 into the engine's representation (as eDecodeG1).
func eDecodeG2(b []byte) (*eG2, error) {
	if _, err := checkHeader(b, G2Size, "G2"); err != nil {
		return nil, err
	}
	q := new(eG2)
	if C.mg_g2_decode(&q.p, bptr(b)) != 0 {
		if _, err := DecodeG2(b); err != nil {
			return nil, err
		}
		// Unreachable (the tests and FuzzEngineDecode compare the two);
		// never panic on peer input.
		return nil, decodeErr("G2: rejected by blst, accepted by circl", ErrNonCanonical)
	}
	return q, nil
}

// eG1From converts a circl point (key material, at set-up time).
func eG1From(p *bls12381.G1) *eG1 {
	out := new(eG1)
	if p.IsIdentity() {
		return out // all zero: blst's identity
	}
	if C.mg_g1_decode(&out.p, bptr(p.BytesCompressed())) != 0 {
		panic("pairing: unreachable: circl G1 point rejected by blst")
	}
	return out
}

// eG2From converts a circl point (key material, at set-up time).
func eG2From(q *bls12381.G2) *eG2 {
	out := new(eG2)
	if q.IsIdentity() {
		return out
	}
	if C.mg_g2_decode(&out.p, bptr(q.BytesCompressed())) != 0 {
		panic("pairing: unreachable: circl G2 point rejected by blst")
	}
	return out
}

// eHashG1 is H1 (RFC 9380 hash_to_curve, the same bytes as circl's).
func eHashG1(d Domain, msg []byte) *eG1 {
	dst := d.DST("H1")
	m := append(msg[:len(msg):len(msg)], 0) // never empty: a valid pointer
	p := new(eG1)
	C.blst_hash_to_g1(&p.p, bptr(m), C.size_t(len(msg)), bptr(dst), C.size_t(len(dst)), nil, 0)
	return p
}

// eHashG2 is H2.
func eHashG2(d Domain, msg []byte) *eG2 {
	dst := d.DST("H2")
	m := append(msg[:len(msg):len(msg)], 0)
	q := new(eG2)
	C.blst_hash_to_g2(&q.p, bptr(m), C.size_t(len(msg)), bptr(dst), C.size_t(len(dst)), nil, 0)
	return q
}

// eMul sets out = k·p in constant time (blst's GLV with fixed windows).
func eMul(out *eG1, k *bls12381.Scalar, p *eG1) {
	le := leScalar(k)
	C.blst_p1_mult(&out.p, &p.p, (*C.byte)(&le[0]), 255)
	clear(le[:])
}

// eMulPublic sets out = k·p for a public scalar k. blst's multiplication
// is constant-time and already faster than a variable-time one in Go.
func eMulPublic(out *eG1, k *bls12381.Scalar, p *eG1) { eMul(out, k, p) }

// eMulG2 sets out = k·q in constant time.
func eMulG2(out *eG2, k *bls12381.Scalar, q *eG2) {
	le := leScalar(k)
	C.blst_p2_mult(&out.p, &q.p, (*C.byte)(&le[0]), 255)
	clear(le[:])
}

// eAdd sets out = a + b (complete: doubling and identities included).
func eAdd(out, a, b *eG1) { C.blst_p1_add_or_double(&out.p, &a.p, &b.p) }

func eIsIdentity(p *eG1) bool { return bool(C.blst_p1_is_inf(&p.p)) }

// eBytesG1 is the 48-byte compressed encoding (as EncodeG1).
func eBytesG1(p *eG1) []byte {
	b := make([]byte, G1Size)
	C.blst_p1_compress(bptr(b), &p.p)
	return b
}

// eBytesG2 is the 96-byte compressed encoding (as EncodeG2).
func eBytesG2(q *eG2) []byte {
	b := make([]byte, G2Size)
	C.blst_p2_compress(bptr(b), &q.p)
	return b
}

func eZeroG1(p *eG1) { *p = eG1{} }

// eGTExp returns x^n for x in GT, in constant time (Frobenius
// decomposition, mg_gt_exp_frob).
func eGTExp(x *eGT, n *bls12381.Scalar) *eGT {
	nb, _ := n.MarshalBinary()
	defer clear(nb)
	out := new(eGT)
	C.mg_gt_exp_frob(&out.f, &x.f, bptr(nb))
	return out
}

// eGTExpWindowed is eGTExp with plain 4-bit windows (tests and benchmarks).
func eGTExpWindowed(x *eGT, n *bls12381.Scalar) *eGT {
	nb, _ := n.MarshalBinary()
	defer clear(nb)
	out := new(eGT)
	C.mg_gt_exp(&out.f, &x.f, bptr(nb))
	return out
}

// eGTFromBytes and eGTMul let tests check the Fp12 layout against circl
// on arbitrary field elements.
func eGTFromBytes(b []byte) *eGT {
	if len(b) != 576 {
		panic("pairing: eGTFromBytes needs 576 bytes")
	}
	g := new(eGT)
	C.mg_gt_from_bytes(&g.f, bptr(b))
	return g
}

func eGTMul(a, b *eGT) *eGT {
	g := new(eGT)
	C.blst_fp12_mul(&g.f, &a.f, &b.f)
	return g
}

func eGTIsOne(x *eGT) bool { return bool(C.blst_fp12_is_one(&x.f)) }

func eGTZero(x *eGT) { *x = eGT{} }

// gtBytes is GT(g) of docs/protocol.md §1 (circl's Gt.MarshalBinary).
func gtBytes[T gtAny](x T) []byte {
	switch g := any(x).(type) {
	case *eGT:
		b := make([]byte, 576)
		C.mg_gt_bytes(bptr(b), &g.f)
		return b
	case *ff.URoot:
		return circlGTBytes(g)
	}
	panic("unreachable")
}
