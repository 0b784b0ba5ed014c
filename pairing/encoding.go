package pairing

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
)

// Flag bits of the first byte of the ZCash compressed encoding.
const (
	flagCompressed = 0x80
	flagInfinity   = 0x40
	flagSign       = 0x20
	flagMask       = 0xE0
)

var fpOrder = ff.FpOrder()

// g2B is the constant 4(1+u) of the twist y² = x³ + 4(1+u).
var g2B = func() (b ff.Fp2) { b[0].SetUint64(4); b[1].SetUint64(4); return }()

func decodeErr(what string, err error) error { return fmt.Errorf("%w (%s)", err, what) }

// checkHeader classifies the flag bits and the infinity encoding shared by
// compressed G1 and G2 encodings. On success x is the coordinate bytes with
// the flags cleared.
func checkHeader(b []byte, size int, what string) ([]byte, error) {
	if len(b) != size {
		return nil, decodeErr(what, ErrLength)
	}
	if b[0]&flagCompressed == 0 {
		return nil, decodeErr(what+": compression flag not set", ErrNonCanonical)
	}
	if b[0]&flagInfinity != 0 {
		if b[0] != flagCompressed|flagInfinity || !allZero(b[1:]) {
			return nil, decodeErr(what+": infinity with other bits set", ErrNonCanonical)
		}
		return nil, decodeErr(what, ErrIdentity)
	}
	x := bytes.Clone(b)
	x[0] &^= flagMask
	// Every Fp coordinate must be < p (public data: no need for constant time).
	for i := 0; i < len(x); i += ff.FpSize {
		if bytes.Compare(x[i:i+ff.FpSize], fpOrder) >= 0 {
			return nil, decodeErr(what+": coordinate ≥ p", ErrNonCanonical)
		}
	}
	return x, nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// DecodeG1 decodes a 48-byte compressed G1 element received from a peer. It
// rejects, each with its own error: a wrong length (ErrLength); bad flag
// bits, x ≥ p or an infinity with other bits set (ErrNonCanonical); an x
// with no point on the curve (ErrNotOnCurve); a point outside the
// prime-order subgroup (ErrNotInSubgroup); the identity (ErrIdentity).
func DecodeG1(b []byte) (*bls12381.G1, error) {
	x, err := checkHeader(b, G1Size, "G1")
	if err != nil {
		return nil, err
	}
	p := new(bls12381.G1)
	if p.SetBytes(b) == nil {
		if p.IsIdentity() { // excluded by checkHeader; defence in depth
			return nil, decodeErr("G1", ErrIdentity)
		}
		return p, nil
	}
	// Rejected: classify (only on failure, to keep the valid path fast).
	var fx, rhs, y, four ff.Fp
	if fx.UnmarshalBinary(x) != nil {
		return nil, decodeErr("G1", ErrNonCanonical)
	}
	rhs.Sqr(&fx)
	rhs.Mul(&rhs, &fx)
	four.SetUint64(4)
	rhs.Add(&rhs, &four)
	if y.Sqrt(&rhs) == 0 {
		return nil, decodeErr("G1", ErrNotOnCurve)
	}
	return nil, decodeErr("G1", ErrNotInSubgroup)
}

// DecodeG2 decodes a 96-byte compressed G2 element received from a peer,
// with the same checks and errors as DecodeG1.
func DecodeG2(b []byte) (*bls12381.G2, error) {
	x, err := checkHeader(b, G2Size, "G2")
	if err != nil {
		return nil, err
	}
	p := new(bls12381.G2)
	if p.SetBytes(b) == nil {
		if p.IsIdentity() { // excluded by checkHeader; defence in depth
			return nil, decodeErr("G2", ErrIdentity)
		}
		return p, nil
	}
	var fx, rhs, y ff.Fp2
	if fx.UnmarshalBinary(x) != nil {
		return nil, decodeErr("G2", ErrNonCanonical)
	}
	rhs.Sqr(&fx)
	rhs.Mul(&rhs, &fx)
	rhs.Add(&rhs, &g2B)
	if y.Sqrt(&rhs) == 0 {
		return nil, decodeErr("G2", ErrNotOnCurve)
	}
	return nil, decodeErr("G2", ErrNotInSubgroup)
}

// EncodeG1 returns the 48-byte compressed encoding of p.
func EncodeG1(p *bls12381.G1) []byte { return p.BytesCompressed() }

// EncodeG2 returns the 96-byte compressed encoding of p.
func EncodeG2(p *bls12381.G2) []byte { return p.BytesCompressed() }

// EncodeGT returns the 576-byte encoding of a GT element (circl's
// Gt.MarshalBinary, docs/protocol.md §1).
func EncodeGT(g *bls12381.Gt) []byte {
	b, _ := g.MarshalBinary()
	return b
}

// DecodeScalar decodes a 32-byte big-endian scalar, rejecting a wrong
// length (ErrLength), a value ≥ r (ErrNonCanonical) and zero (ErrZeroScalar).
func DecodeScalar(b []byte) (*bls12381.Scalar, error) {
	if len(b) != ScalarSize {
		return nil, decodeErr("scalar", ErrLength)
	}
	s := new(bls12381.Scalar)
	if s.UnmarshalBinary(b) != nil {
		return nil, decodeErr("scalar ≥ r", ErrNonCanonical)
	}
	if s.IsZero() == 1 {
		return nil, decodeErr("scalar", ErrZeroScalar)
	}
	return s, nil
}

// EncodeScalar returns the 32-byte big-endian encoding of s.
func EncodeScalar(s *bls12381.Scalar) []byte {
	b, _ := s.MarshalBinary()
	return b
}

// CheckID reports whether id is a valid identity (docs/protocol.md §2): 1..MaxIDLen
// bytes of UTF-8 with no control character (Unicode Cc: U+0000–U+001F,
// U+007F–U+009F), so that no identity can smuggle a NUL, CR or LF into a
// log line, an HTTP header or a PROXY protocol TLV; and, against look-alike
// identities, in Unicode Normalization Form C, with no format character
// (Unicode Cf: zero-width spaces and joiners, bidirectional controls, U+FEFF,
// the soft hyphen) and no white space at either end. A look-alike built
// from other scripts' letters (a Cyrillic "а") passes: it is visible, and
// the D-TA's listings print non-ASCII code points.
func CheckID(id string) error {
	if len(id) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidID, len(id), MaxIDLen)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: not UTF-8", ErrInvalidID)
	}
	for _, r := range id {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("%w: control character %U", ErrInvalidID, r)
		}
		if unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w: invisible format character %U", ErrInvalidID, r)
		}
	}
	first, _ := utf8.DecodeRuneInString(id)
	last, _ := utf8.DecodeLastRuneInString(id)
	if unicode.Is(unicode.White_Space, first) {
		return fmt.Errorf("%w: starts with white space %U", ErrInvalidID, first)
	}
	if unicode.Is(unicode.White_Space, last) {
		return fmt.Errorf("%w: ends with white space %U", ErrInvalidID, last)
	}
	if !norm.NFC.IsNormalString(id) {
		return fmt.Errorf("%w: not in Unicode Normalization Form C (normalise it: %q)", ErrInvalidID, norm.NFC.String(id))
	}
	return nil
}
