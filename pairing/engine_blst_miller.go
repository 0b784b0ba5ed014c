//go:build cgo

package pairing

// The optimal ate pairing's Miller loop on the blst engine, for products of
// one or two pairings whose G2 arguments are fixed (Q, K_S, K2_C): each G2
// point's 68 lines are computed once (ePrepare) and every product then
// runs one loop over a shared accumulator (one Fp12 squaring per bit for
// all pairs together) and one final exponentiation (blst_final_exp).
// Field arithmetic is blst's exported Fp2/Fp12 API; the formulas are
// derived below.
//
// The math (Costello, Lange, Naehrig, "Faster pairing computations on
// curves with high-degree twists", PKC 2010, §4-5, for the shape; the
// formulas here are worked out from the chord-tangent law):
//
//   - G2 lives on the twist E': y² = x³ + b' over Fp2, b' = 4ξ, ξ = 1 + u.
//     In blst's tower Fp12 = Fp6[w]/(w² − v), Fp6 = Fp2[v]/(v³ − ξ), so
//     w⁶ = ξ and P = (xP, yP) of G1 maps onto E' as (xP·w², yP·w³). A line
//     c0 + c1·x + c2·y on E' therefore takes at P the value
//     c0 + (c1·xP)·v + (c2·yP)·v·w: a sparse Fp12 element with three
//     non-zero Fp2 slots, the shape blst_fp12_mul_by_xy00z0 multiplies by.
//   - Any line may be scaled by an element of Fp2 (or Fp6): the final
//     exponentiation maps those factors to 1. So lines are kept with
//     denominators cleared, in homogeneous coordinates T = (X : Y : Z).
//   - Tangent at T (the affine one times 2y_T·Z²): 2YZ·y − 3X²·x + (Y² − 3b'Z²).
//     Doubling, with B = Y², E = 3b'Z², F = 3E (the shape of CLN's
//     homogeneous doubling, scaled by 4 so that no halving is needed):
//     2T = (2XY(B − F) : (B + F)² − 12E² : 8Y³Z). It follows from
//     x(2T) = λ² − 2x, λ = 3x²/(2y), with X³ = Y²Z − b'Z³ from the curve.
//   - Chord through T and the affine Q = (xQ, yQ), with θ = Y − yQ·Z and
//     μ = X − xQ·Z: μ·y − θ·x + (θ·xQ − μ·yQ). Addition, with
//     D = θ²Z − μ²(X + xQ·Z): T + Q = (μD : θ(μ²xQ·Z − D) − yQ·μ³Z : μ³Z).
//   - The loop runs over the bits of |z| = 0xd201000000010000 (z is the
//     BLS parameter) below the leading one: square, multiply by the tangent
//     line, and on a set bit by the chord line (63 + 5 = 68 lines). z < 0,
//     so the result is conjugated before the final exponentiation.

/*
#include "blst_api.h"

// One line: its value at P = (xP, yP) is c[0] + c[1]·xP·v + c[2]·yP·v·w.
typedef struct { blst_fp2 c[3]; } mg_line;

enum { MG_LINES = 68 };

static const uint64_t mg_abs_z = 0xd201000000010000ULL;

// mg_tangent replaces t by 2t and writes the tangent line at t.
static void mg_tangent(blst_p2 *t, mg_line *l) {
	blst_fp2 b, c, e, f, h, k;
	blst_fp2_sqr(&b, &t->y);                 // B = Y²
	blst_fp2_sqr(&c, &t->z);                 // C = Z²
	blst_fp2_add(&h, &t->y, &t->z);
	blst_fp2_sqr(&h, &h);
	blst_fp2_sub(&h, &h, &b);
	blst_fp2_sub(&h, &h, &c);                // H = (Y + Z)² − B − C = 2YZ
	blst_fp_sub(&e.fp[0], &c.fp[0], &c.fp[1]); // ξC (ξ = 1 + u, u² = −1)
	blst_fp_add(&e.fp[1], &c.fp[0], &c.fp[1]);
	blst_fp2_mul_by_3(&e, &e);
	blst_fp2_lshift(&e, &e, 2);              // E = 12ξC = 3b'Z²
	blst_fp2_mul_by_3(&f, &e);               // F = 3E

	blst_fp2_sub(&l->c[0], &b, &e);          // c0 = Y² − 3b'Z²
	blst_fp2_sqr(&k, &t->x);
	blst_fp2_mul_by_3(&k, &k);
	blst_fp2_cneg(&l->c[1], &k, true);       // c1 = −3X²
	l->c[2] = h;                             // c2 = 2YZ

	blst_fp2_mul(&k, &t->x, &t->y);
	blst_fp2_sub(&c, &b, &f);
	blst_fp2_mul(&k, &k, &c);
	blst_fp2_add(&t->x, &k, &k);             // X' = 2XY(B − F)
	blst_fp2_add(&c, &b, &f);
	blst_fp2_sqr(&c, &c);
	blst_fp2_sqr(&e, &e);
	blst_fp2_mul_by_3(&e, &e);
	blst_fp2_lshift(&e, &e, 2);
	blst_fp2_sub(&t->y, &c, &e);             // Y' = (B + F)² − 12E²
	blst_fp2_mul(&t->z, &b, &h);
	blst_fp2_lshift(&t->z, &t->z, 2);        // Z' = 4BH = 8Y³Z
}

// mg_chord replaces t by t + q (t ≠ ±q) and writes the line through them.
static void mg_chord(blst_p2 *t, const blst_p2_affine *q, mg_line *l) {
	blst_fp2 xqz, yqz, th, mu, mu2, mu3, d, k;
	blst_fp2_mul(&xqz, &q->x, &t->z);
	blst_fp2_mul(&yqz, &q->y, &t->z);
	blst_fp2_sub(&th, &t->y, &yqz);          // θ = Y − yQ·Z
	blst_fp2_sub(&mu, &t->x, &xqz);          // μ = X − xQ·Z

	blst_fp2_mul(&l->c[0], &th, &q->x);
	blst_fp2_mul(&k, &mu, &q->y);
	blst_fp2_sub(&l->c[0], &l->c[0], &k);    // c0 = θ·xQ − μ·yQ
	blst_fp2_cneg(&l->c[1], &th, true);      // c1 = −θ
	l->c[2] = mu;                            // c2 = μ

	blst_fp2_sqr(&mu2, &mu);
	blst_fp2_mul(&mu3, &mu2, &mu);
	blst_fp2_sqr(&d, &th);
	blst_fp2_mul(&d, &d, &t->z);             // θ²Z
	blst_fp2_add(&k, &t->x, &xqz);
	blst_fp2_mul(&k, &k, &mu2);
	blst_fp2_sub(&d, &d, &k);                // D = θ²Z − μ²(X + xQ·Z)

	blst_fp2_mul(&t->x, &mu, &d);            // X' = μD
	blst_fp2_mul(&k, &mu2, &xqz);
	blst_fp2_sub(&k, &k, &d);
	blst_fp2_mul(&k, &k, &th);               // θ(μ²·xQ·Z − D)
	blst_fp2_mul(&d, &yqz, &mu3);
	blst_fp2_sub(&t->y, &k, &d);             // Y' = θ(μ²xQ·Z − D) − yQ·μ³Z
	blst_fp2_mul(&t->z, &mu3, &t->z);        // Z' = μ³Z
}

// mg_lines writes the 68 lines of q (not the identity), in loop order.
static void mg_lines(mg_line ls[MG_LINES], const blst_p2 *q) {
	blst_p2_affine qa;
	blst_p2 t;
	blst_p2_to_affine(&qa, q);
	blst_p2_from_affine(&t, &qa); // Z = 1
	size_t n = 0;
	for (int i = 62; i >= 0; i--) {
		mg_tangent(&t, &ls[n++]);
		if ((mg_abs_z >> i) & 1) mg_chord(&t, &qa, &ls[n++]);
	}
}

// mg_line_mul sets f = f·l(p).
static void mg_line_mul(blst_fp12 *f, const mg_line *l, const blst_p1_affine *p) {
	blst_fp6 v;
	v.fp2[0] = l->c[0];
	blst_fp_mul(&v.fp2[1].fp[0], &l->c[1].fp[0], &p->x);
	blst_fp_mul(&v.fp2[1].fp[1], &l->c[1].fp[1], &p->x);
	blst_fp_mul(&v.fp2[2].fp[0], &l->c[2].fp[0], &p->y);
	blst_fp_mul(&v.fp2[2].fp[1], &l->c[2].fp[1], &p->y);
	blst_fp12_mul_by_xy00z0(f, f, &v);
}

// mg_pair sets ret = e(p1, Q1)·e(p2, Q2) from the lines l1 of Q1 and,
// when p2 is not NULL, Q2's lines l2 or (l2 NULL) the point q2 itself,
// whose lines are then computed here and not kept. A pair with an
// identity point contributes 1 (e(O, Q) = e(P, O) = 1) and is left out.
static void mg_pair(blst_fp12 *ret, const mg_line *l1, const blst_p1 *p1,
                    const mg_line *l2, const blst_p2 *q2, const blst_p1 *p2) {
	mg_line fresh[MG_LINES];
	const mg_line *ls[2];
	blst_p1_affine ps[2];
	size_t n = 0;
	if (!blst_p1_is_inf(p1)) {
		ls[n] = l1;
		blst_p1_to_affine(&ps[n++], p1);
	}
	if (p2 != NULL && !blst_p1_is_inf(p2) && (l2 != NULL || !blst_p2_is_inf(q2))) {
		if (l2 == NULL) {
			mg_lines(fresh, q2);
			l2 = fresh;
		}
		ls[n] = l2;
		blst_p1_to_affine(&ps[n++], p2);
	}
	blst_fp12 f = *blst_fp12_one();
	size_t k = 0;
	for (int i = 62; i >= 0; i--) {
		if (i != 62) blst_fp12_sqr(&f, &f); // f = 1 before the first line
		for (size_t j = 0; j < n; j++) mg_line_mul(&f, &ls[j][k], &ps[j]);
		k++;
		if ((mg_abs_z >> i) & 1) {
			for (size_t j = 0; j < n; j++) mg_line_mul(&f, &ls[j][k], &ps[j]);
			k++;
		}
	}
	blst_fp12_conjugate(&f);
	blst_final_exp(ret, &f);
}
*/
import "C"

import (
	"sync"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// eLines are the 68 Miller-loop lines of a G2 point.
type eLines struct{ l [C.MG_LINES]C.mg_line }

// ePrepare computes the Miller-loop lines of q (not the identity).
func ePrepare(q *eG2) *eLines {
	l := new(eLines)
	C.mg_lines(&l.l[0], &q.p)
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
		C.mg_pair(&g.f, &ls[0].l[0], &ps[0].p, nil, nil, nil)
	case 2:
		C.mg_pair(&g.f, &ls[0].l[0], &ps[0].p, &ls[1].l[0], nil, &ps[1].p)
	default:
		panic("pairing: ePair takes one or two pairs")
	}
	return g
}

// ePairFresh returns e(p1, Q1)·e(p2, q2) with Q1's lines precomputed and
// q2 used once (its lines live on the C stack for this call only).
func ePairFresh(p1 *eG1, l1 *eLines, p2 *eG1, q2 *eG2) *eGT {
	g := new(eGT)
	C.mg_pair(&g.f, &l1.l[0], &p1.p, nil, &q2.p, &p2.p)
	return g
}
