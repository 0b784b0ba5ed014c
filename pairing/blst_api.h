// The part of blst's public C API (blst.h, v0.3.x) the blst engine calls,
// declared once for engine_blst.go and engine_blst_comb.go. The blst Go
// binding compiles and links the definitions.

#ifndef MILAGRO_BLST_API_H
#define MILAGRO_BLST_API_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

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

// Fp, Fp2 and Fp12.
void blst_bendian_from_fp(byte ret[48], const blst_fp *a);
void blst_fp_from_bendian(blst_fp *ret, const byte a[48]);
void blst_fp_add(blst_fp *ret, const blst_fp *a, const blst_fp *b);
void blst_fp_sub(blst_fp *ret, const blst_fp *a, const blst_fp *b);
void blst_fp_mul(blst_fp *ret, const blst_fp *a, const blst_fp *b);
void blst_fp2_add(blst_fp2 *ret, const blst_fp2 *a, const blst_fp2 *b);
void blst_fp2_sub(blst_fp2 *ret, const blst_fp2 *a, const blst_fp2 *b);
void blst_fp2_mul_by_3(blst_fp2 *ret, const blst_fp2 *a);
void blst_fp2_mul_by_8(blst_fp2 *ret, const blst_fp2 *a);
void blst_fp2_lshift(blst_fp2 *ret, const blst_fp2 *a, size_t count);
void blst_fp2_mul(blst_fp2 *ret, const blst_fp2 *a, const blst_fp2 *b);
void blst_fp2_sqr(blst_fp2 *ret, const blst_fp2 *a);
void blst_fp2_cneg(blst_fp2 *ret, const blst_fp2 *a, bool flag);
void blst_fp12_sqr(blst_fp12 *ret, const blst_fp12 *a);
void blst_fp12_mul_by_xy00z0(blst_fp12 *ret, const blst_fp12 *a, const blst_fp6 *xy00z0);
void blst_fp12_cyclotomic_sqr(blst_fp12 *ret, const blst_fp12 *a);
void blst_fp12_mul(blst_fp12 *ret, const blst_fp12 *a, const blst_fp12 *b);
void blst_fp12_conjugate(blst_fp12 *a);
void blst_fp12_frobenius_map(blst_fp12 *ret, const blst_fp12 *a, size_t n);
bool blst_fp12_is_one(const blst_fp12 *a);
const blst_fp12 *blst_fp12_one(void);

// G1.
void blst_p1_double(blst_p1 *out, const blst_p1 *a);
void blst_p1_add_or_double(blst_p1 *out, const blst_p1 *a, const blst_p1 *b);
void blst_p1_add_or_double_affine(blst_p1 *out, const blst_p1 *a, const blst_p1_affine *b);
void blst_p1_mult(blst_p1 *out, const blst_p1 *p, const byte *scalar, size_t nbits);
void blst_p1_to_affine(blst_p1_affine *out, const blst_p1 *in);
void blst_p1s_to_affine(blst_p1_affine dst[], const blst_p1 *const points[], size_t npoints);
void blst_p1_from_affine(blst_p1 *out, const blst_p1_affine *in);
bool blst_p1_is_inf(const blst_p1 *a);
bool blst_p1_affine_in_g1(const blst_p1_affine *p);
void blst_p1_compress(byte out[48], const blst_p1 *in);
int blst_p1_uncompress(blst_p1_affine *out, const byte in[48]);
void blst_hash_to_g1(blst_p1 *out, const byte *msg, size_t msg_len,
                     const byte *DST, size_t DST_len, const byte *aug, size_t aug_len);

// G2.
void blst_p2_mult(blst_p2 *out, const blst_p2 *p, const byte *scalar, size_t nbits);
void blst_p2_to_affine(blst_p2_affine *out, const blst_p2 *in);
void blst_p2_from_affine(blst_p2 *out, const blst_p2_affine *in);
bool blst_p2_is_inf(const blst_p2 *a);
bool blst_p2_affine_in_g2(const blst_p2_affine *p);
void blst_p2_compress(byte out[96], const blst_p2 *in);
int blst_p2_uncompress(blst_p2_affine *out, const byte in[96]);
void blst_hash_to_g2(blst_p2 *out, const byte *msg, size_t msg_len,
                     const byte *DST, size_t DST_len, const byte *aug, size_t aug_len);

// The final exponentiation of a pairing.
void blst_final_exp(blst_fp12 *ret, const blst_fp12 *f);

#endif
