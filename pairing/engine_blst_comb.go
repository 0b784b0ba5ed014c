//go:build cgo

package pairing

// A fixed-base comb for public scalars on the blst engine. The CS server
// multiplies the same A′ (one client identity on one day) by two public
// scalars per handshake, y and h; with a 31-point table of A′ kept in the
// identity cache that costs 51 doublings and at most 51 additions instead
// of blst's full constant-time multiplication. The comb branches on the
// scalar's bits: it is for public scalars only, never for w, x or a key.

/*
#include "blst_api.h"

enum { MG_COMB_T = 5, MG_COMB_D = 51, MG_COMB_N = 31 }; // teeth, spacing (5·51 = 255 bits), 2^T − 1 entries

// mg_comb_precompute sets table[j−1] = Σ_{bit i of j set} 2^(i·D)·p for
// j = 1 … 2^T − 1, in affine form. p must not be the identity; then no
// entry is (every coefficient is below the group order).
static void mg_comb_precompute(blst_p1_affine table[MG_COMB_N], const blst_p1 *p) {
	blst_p1 base[MG_COMB_T], pts[MG_COMB_N];
	const blst_p1 *ptrs[MG_COMB_N];
	base[0] = *p;
	for (int i = 1; i < MG_COMB_T; i++) {
		base[i] = base[i - 1];
		for (int k = 0; k < MG_COMB_D; k++) blst_p1_double(&base[i], &base[i]);
	}
	for (unsigned j = 1; j <= MG_COMB_N; j++) {
		unsigned low = __builtin_ctz(j), rest = j & (j - 1);
		if (rest == 0) pts[j - 1] = base[low];
		else blst_p1_add_or_double(&pts[j - 1], &pts[rest - 1], &base[low]);
		ptrs[j - 1] = &pts[j - 1];
	}
	blst_p1s_to_affine(table, ptrs, MG_COMB_N);
}

// mg_comb_mult sets out = k·p from p's table, k in 32 little-endian bytes
// (below 2^255). Variable time: public scalars only.
static void mg_comb_mult(blst_p1 *out, const blst_p1_affine table[MG_COMB_N], const byte k[32]) {
	blst_p1 r = {0}; // Z = 0: the identity
	bool inf = true;
	for (int col = MG_COMB_D - 1; col >= 0; col--) {
		if (!inf) blst_p1_double(&r, &r);
		unsigned j = 0;
		for (int i = 0; i < MG_COMB_T; i++) {
			unsigned bit = i * MG_COMB_D + col;
			j |= ((k[bit >> 3] >> (bit & 7)) & 1u) << i;
		}
		if (j != 0) {
			blst_p1_add_or_double_affine(&r, &r, &table[j - 1]);
			inf = false;
		}
	}
	*out = r;
}
*/
import "C"

import bls12381 "github.com/cloudflare/circl/ecc/bls12381"

// eTable is a point prepared for eMulTable.
type eTable struct{ t [C.MG_COMB_N]C.blst_p1_affine }

// eTableOf prepares p (public) for repeated multiplication by public
// scalars; nil for the identity.
func eTableOf(p *eG1) *eTable {
	if eIsIdentity(p) {
		return nil
	}
	t := new(eTable)
	C.mg_comb_precompute(&t.t[0], &p.p)
	return t
}

// eMulTable sets out = k·P for a public scalar k and P's table.
func eMulTable(out *eG1, k *bls12381.Scalar, t *eTable) {
	le := leScalar(k)
	C.mg_comb_mult(&out.p, &t.t[0], (*C.byte)(&le[0]))
}
