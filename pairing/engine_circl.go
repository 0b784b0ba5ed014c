//go:build !cgo

package pairing

// The circl engine: pure Go (github.com/cloudflare/circl), used when cgo is
// off (CGO_ENABLED=0). Its building blocks are fastpair.go (precomputed
// Miller lines, multi-pairing, GT exponentiation) and wnaf.go.

import (
	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
)

const engineName = "circl"

// enginePortable: pure Go runs on every CPU.
var enginePortable = true

type (
	eG1    = bls12381.G1
	eG2    = bls12381.G2
	eLines = g2Lines
	eGT    = ff.URoot
)

type gtAny interface{ *ff.URoot }

func eDecodeG1(b []byte) (*eG1, error) { return DecodeG1(b) }
func eDecodeG2(b []byte) (*eG2, error) { return DecodeG2(b) }

func eG1From(p *bls12381.G1) *eG1 { q := *p; return &q }
func eG2From(q *bls12381.G2) *eG2 { r := *q; return &r }

func eHashG1(d Domain, msg []byte) *eG1 { return H1(d, msg) }
func eHashG2(d Domain, msg []byte) *eG2 { return H2(d, msg) }

// eMul: circl's ScalarMult uses fixed windows, constant time.
func eMul(out *eG1, k *bls12381.Scalar, p *eG1)       { out.ScalarMult(k, p) }
func eMulPublic(out *eG1, k *bls12381.Scalar, p *eG1) { mulPublic(out, k, p) }
func eMulG2(out *eG2, k *bls12381.Scalar, q *eG2)     { out.ScalarMult(k, q) }
func eAdd(out, a, b *eG1)                             { out.Add(a, b) }
func eIsIdentity(p *eG1) bool                         { return p.IsIdentity() }
func eBytesG1(p *eG1) []byte                          { return p.BytesCompressed() }
func eBytesG2(q *eG2) []byte                          { return q.BytesCompressed() }
func eZeroG1(p *eG1)                                  { p.SetIdentity() }

// eTable is a point prepared for eMulTable; circl's wNAF needs no
// lasting table.
type eTable struct{ p eG1 }

func eTableOf(p *eG1) *eTable {
	if p.IsIdentity() {
		return nil
	}
	return &eTable{p: *p}
}
func eMulTable(out *eG1, k *bls12381.Scalar, t *eTable) { mulPublic(out, k, &t.p) }

func ePrepare(q *eG2) *eLines { return prepareG2(q) }
func eZeroLines(l *eLines)    { *l = g2Lines{} }

var eGenLines = generatorLines

func ePair(ps []*eG1, ls []*eLines) *eGT { return multiPair(ps, ls) }
func ePairFresh(p1 *eG1, l1 *eLines, p2 *eG1, q2 *eG2) *eGT {
	return multiPair([]*eG1{p1, p2}, []*eLines{l1, prepareG2(q2)})
}
func eGTExp(x *eGT, n *bls12381.Scalar) *eGT { return gtExp(x, n) }
func eGTIsOne(x *eGT) bool                   { return x.IsIdentity() == 1 }
func eGTZero(x *eGT)                         { *x = ff.URoot{} }
func gtBytes[T gtAny](x T) []byte            { return circlGTBytes(x) }
