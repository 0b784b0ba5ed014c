//go:build cgo

package pairing

// The blst engine (github.com/supranational/blst, constant-time, audited),
// used whenever cgo is on. The blst Go binding compiles the library; the
// small C helpers below call its exported C API directly (the binding has
// no multi-pairing with precomputed lines, no GT exponentiation and no GT
// encoding in circl's order).
//
// Build hygiene: the binding compiles blst for ADX-capable CPUs unless
// CGO_CFLAGS carries -D__BLST_PORTABLE__ (then blst picks the code path at
// run time). The Makefile sets CGO_CFLAGS="-O2 -D__BLST_PORTABLE__"; see
// Portable.

/*
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

// Declarations from blst.h (blst v0.3.x; the binding's package links the
// definitions).
typedef uint8_t byte;
typedef uint64_t limb_t;
typedef struct { limb_t l[6]; } blst_fp;
typedef struct { blst_fp fp[2]; } blst_fp2;
typedef struct { blst_fp2 fp2[3]; } blst_fp6;
typedef struct { blst_fp6 fp6[2]; } blst_fp12;
typedef struct { blst_fp x, y, z; } blst_p1;
typedef struct { blst_fp x, y; } blst_p1_affine;
typedef struct { blst_fp2 x, y, z; } blst_p2;
typedef struct { blst_fp2 x, y; } blst_p2_affine;

void blst_fp_add(blst_fp *ret, const blst_fp *a, const blst_fp *b);
void blst_fp_mul(blst_fp *ret, const blst_fp *a, const blst_fp *b);
void blst_fp_cneg(blst_fp *ret, const blst_fp *a, bool flag);
void blst_bendian_from_fp(byte ret[48], const blst_fp *a);
void blst_fp_from_bendian(blst_fp *ret, const byte a[48]);
void blst_fp12_sqr(blst_fp12 *ret, const blst_fp12 *a);
void blst_fp12_cyclotomic_sqr(blst_fp12 *ret, const blst_fp12 *a);
void blst_fp12_mul(blst_fp12 *ret, const blst_fp12 *a, const blst_fp12 *b);
void blst_fp12_mul_by_xy00z0(blst_fp12 *ret, const blst_fp12 *a, const blst_fp6 *xy00z0);
void blst_fp12_conjugate(blst_fp12 *a);
void blst_fp12_frobenius_map(blst_fp12 *ret, const blst_fp12 *a, size_t n);
bool blst_fp12_is_one(const blst_fp12 *a);
const blst_fp12 *blst_fp12_one(void);
void blst_p1_add_or_double(blst_p1 *out, const blst_p1 *a, const blst_p1 *b);
void blst_p1_mult(blst_p1 *out, const blst_p1 *p, const byte *scalar, size_t nbits);
void blst_p1_to_affine(blst_p1_affine *out, const blst_p1 *in);
void blst_p1_from_affine(blst_p1 *out, const blst_p1_affine *in);
bool blst_p1_is_inf(const blst_p1 *a);
bool blst_p1_affine_in_g1(const blst_p1_affine *p);
void blst_p2_mult(blst_p2 *out, const blst_p2 *p, const byte *scalar, size_t nbits);
void blst_p2_to_affine(blst_p2_affine *out, const blst_p2 *in);
void blst_p2_from_affine(blst_p2 *out, const blst_p2_affine *in);
bool blst_p2_is_inf(const blst_p2 *a);
bool blst_p2_affine_in_g2(const blst_p2_affine *p);
void blst_hash_to_g1(blst_p1 *out, const byte *msg, size_t msg_len,
                     const byte *DST, size_t DST_len, const byte *aug, size_t aug_len);
void blst_hash_to_g2(blst_p2 *out, const byte *msg, size_t msg_len,
                     const byte *DST, size_t DST_len, const byte *aug, size_t aug_len);
void blst_p1_compress(byte out[48], const blst_p1 *in);
int blst_p1_uncompress(blst_p1_affine *out, const byte in[48]);
void blst_p2_compress(byte out[96], const blst_p2 *in);
int blst_p2_uncompress(blst_p2_affine *out, const byte in[96]);
void blst_final_exp(blst_fp12 *ret, const blst_fp12 *f);
void blst_precompute_lines(blst_fp6 Qlines[68], const blst_p2_affine *Q);
void blst_miller_loop_lines(blst_fp12 *ret, const blst_fp6 Qlines[68], const blst_p1_affine *P);

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

static void mg_precompute(blst_fp6 lines[68], const blst_p2 *q) {
	blst_p2_affine a;
	blst_p2_to_affine(&a, q);
	blst_precompute_lines(lines, &a);
}

// mg_px2 prepares P for line evaluation as blst does: (-2x, 2y).
static void mg_px2(blst_p1_affine *px2, const blst_p1 *p) {
	blst_p1_affine a;
	blst_p1_to_affine(&a, p);
	blst_fp_add(&px2->x, &a.x, &a.x);
	blst_fp_cneg(&px2->x, &px2->x, true);
	blst_fp_add(&px2->y, &a.y, &a.y);
}

static void mg_line_eval(blst_fp6 *out, const blst_fp6 *in, const blst_p1_affine *px2) {
	out->fp2[0] = in->fp2[0];
	blst_fp_mul(&out->fp2[1].fp[0], &in->fp2[1].fp[0], &px2->x);
	blst_fp_mul(&out->fp2[1].fp[1], &in->fp2[1].fp[1], &px2->x);
	blst_fp_mul(&out->fp2[2].fp[0], &in->fp2[2].fp[0], &px2->y);
	blst_fp_mul(&out->fp2[2].fp[1], &in->fp2[2].fp[1], &px2->y);
}

// mg_pair2 sets ret = e(p1, Q1)·e(p2, Q2) (p2/l2 may be NULL) from the
// precomputed lines of Q1, Q2: one Miller loop over a shared accumulator,
// following blst's miller_loop_lines (pairing.c) step for step, and one
// final exponentiation. Pairs with an identity G1 point contribute 1.
static void mg_pair2(blst_fp12 *ret, const blst_fp6 *l1, const blst_p1 *p1,
                     const blst_fp6 *l2, const blst_p1 *p2) {
	static const size_t start[5] = {1, 4, 8, 18, 51}, dbl[5] = {2, 3, 9, 32, 16};
	const blst_fp6 *ls[2];
	blst_p1_affine px2[2];
	size_t n = 0;
	if (!blst_p1_is_inf(p1)) { ls[n] = l1; mg_px2(&px2[n], p1); n++; }
	if (p2 != NULL && !blst_p1_is_inf(p2)) { ls[n] = l2; mg_px2(&px2[n], p2); n++; }
	blst_fp12 f = *blst_fp12_one();
	blst_fp6 line;
	for (size_t j = 0; j < n; j++) {
		mg_line_eval(&line, &ls[j][0], &px2[j]);
		blst_fp12_mul_by_xy00z0(&f, &f, &line);
	}
	for (size_t s = 0; s < 5; s++) {
		for (size_t j = 0; j < n; j++) {
			mg_line_eval(&line, &ls[j][start[s]], &px2[j]);
			blst_fp12_mul_by_xy00z0(&f, &f, &line);
		}
		for (size_t k = 1; k <= dbl[s]; k++) {
			blst_fp12_sqr(&f, &f);
			for (size_t j = 0; j < n; j++) {
				mg_line_eval(&line, &ls[j][start[s] + k], &px2[j]);
				blst_fp12_mul_by_xy00z0(&f, &f, &line);
			}
		}
	}
	blst_fp12_conjugate(&f); // the BLS parameter is negative
	blst_final_exp(ret, &f);
}

// mg_pair2_fresh is mg_pair2 for a second G2 point without stored lines:
// its lines are computed on the C stack (no 19.6 KB Go allocation).
static void mg_pair2_fresh(blst_fp12 *ret, const blst_fp6 *l1, const blst_p1 *p1,
                           const blst_p2 *q2, const blst_p1 *p2) {
	blst_fp6 l2[68];
	mg_precompute(l2, q2);
	mg_pair2(ret, l1, p1, l2, p2);
}

// mg_pair2_sep is mg_pair2 with one blst Miller loop per pair multiplied
// together (for comparison in tests and benchmarks).
static void mg_pair2_sep(blst_fp12 *ret, const blst_fp6 *l1, const blst_p1 *p1,
                         const blst_fp6 *l2, const blst_p1 *p2) {
	blst_fp12 f = *blst_fp12_one(), g;
	blst_p1_affine a;
	if (!blst_p1_is_inf(p1)) {
		blst_p1_to_affine(&a, p1);
		blst_miller_loop_lines(&g, l1, &a);
		blst_fp12_mul(&f, &f, &g);
	}
	if (p2 != NULL && !blst_p1_is_inf(p2)) {
		blst_p1_to_affine(&a, p2);
		blst_miller_loop_lines(&g, l2, &a);
		blst_fp12_mul(&f, &f, &g);
	}
	blst_final_exp(ret, &f);
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

// mg_gt_bytes writes GT(g) of spec §1: circl's Fp12 encoding, which lists
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
	"sync"
	"unsafe"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
	_ "github.com/supranational/blst/bindings/go" // compiles and links the blst C library
)

const engineName = "blst"

// enginePortable reports whether blst was compiled with __BLST_PORTABLE__
// (run-time CPU detection instead of assuming ADX).
var enginePortable = C.mg_portable() == 1

// eG1 and eG2 are projective points, eLines the 68 Miller-loop lines of a
// G2 point, eGT an element of GT, all in blst's representation.
type (
	eG1    struct{ p C.blst_p1 }
	eG2    struct{ p C.blst_p2 }
	eLines struct{ l [68]C.blst_fp6 }
	eGT    struct{ f C.blst_fp12 }
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
	if _, err := checkHeader(b, G1Size, "G1"); err != nil {
		return nil, err
	}
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

// ePrepare computes the Miller-loop lines of q (not the identity).
func ePrepare(q *eG2) *eLines {
	l := new(eLines)
	C.mg_precompute(&l.l[0], &q.p)
	return l
}

func eZeroLines(l *eLines) { *l = eLines{} }

// eGenLines returns the lines of the G2 generator, computed once.
var eGenLines = sync.OnceValue(func() *eLines { return ePrepare(eG2From(bls12381.G2Generator())) })

// ePair returns Π e(ps[i], qs[i]) for one or two pairs, with one Miller
// loop and one final exponentiation; identity G1 points contribute 1.
func ePair(ps []*eG1, ls []*eLines) *eGT {
	g := new(eGT)
	switch len(ps) {
	case 1:
		C.mg_pair2(&g.f, &ls[0].l[0], &ps[0].p, nil, nil)
	case 2:
		C.mg_pair2(&g.f, &ls[0].l[0], &ps[0].p, &ls[1].l[0], &ps[1].p)
	default:
		panic("pairing: ePair takes one or two pairs")
	}
	return g
}

// ePairFresh returns e(p1, Q1)·e(p2, q2) with Q1's lines precomputed and
// q2 used once.
func ePairFresh(p1 *eG1, l1 *eLines, p2 *eG1, q2 *eG2) *eGT {
	g := new(eGT)
	C.mg_pair2_fresh(&g.f, &l1.l[0], &p1.p, &q2.p, &p2.p)
	return g
}

// ePairSeparate is ePair with one blst Miller loop per pair (tests and
// benchmarks only).
func ePairSeparate(ps []*eG1, ls []*eLines) *eGT {
	g := new(eGT)
	if len(ps) == 1 {
		C.mg_pair2_sep(&g.f, &ls[0].l[0], &ps[0].p, nil, nil)
	} else {
		C.mg_pair2_sep(&g.f, &ls[0].l[0], &ps[0].p, &ls[1].l[0], &ps[1].p)
	}
	return g
}

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

// gtBytes is GT(g) of spec §1 (circl's Gt.MarshalBinary).
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
