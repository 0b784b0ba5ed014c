package pairing

import (
	"crypto"
	_ "crypto/sha256" // expand_message_xmd with SHA-256
	"crypto/subtle"
	"encoding/binary"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/expander"
)

// Domain is the X of the spec's hashes H1_X, H2_X and Hq_X.
type Domain string

// The three hash domains of docs/protocol.md §1.
const (
	DomainCS  Domain = "CS"  // Milagro CS: client keys, y, h
	DomainP2P Domain = "P2P" // Milagro P2P: peer keys, π_S, π_C
	DomainTP  Domain = "TP"  // time permits
)

// DST returns the domain separation tag "MTLS1-" + X + "-" + suffix, where
// suffix is "H1", "H2" or "Hq".
func (d Domain) DST(suffix string) []byte { return []byte("MTLS1-" + string(d) + "-" + suffix) }

// H1 is H1_X(msg): RFC 9380 hash_to_curve to G1
// (BLS12381G1_XMD:SHA-256_SSWU_RO_) with DST "MTLS1-X-H1".
func H1(d Domain, msg []byte) *bls12381.G1 {
	p := new(bls12381.G1)
	p.Hash(msg, d.DST("H1"))
	return p
}

// H2 is H2_X(msg): RFC 9380 hash_to_curve to G2
// (BLS12381G2_XMD:SHA-256_SSWU_RO_) with DST "MTLS1-X-H2".
func H2(d Domain, msg []byte) *bls12381.G2 {
	p := new(bls12381.G2)
	p.Hash(msg, d.DST("H2"))
	return p
}

// Hq is Hq_X(msg): RFC 9380 hash_to_field into Z_r with expand_message_xmd
// (SHA-256), L = 48, one element, DST "MTLS1-X-Hq".
func Hq(d Domain, msg []byte) *bls12381.Scalar {
	u := expander.NewExpanderMD(crypto.SHA256, d.DST("Hq")).Expand(msg, 48)
	return reduce48(u)
}

// two128 and two256 are 2^128 and 2^256 mod r.
var two128, two256 = func() (a, b bls12381.Scalar) {
	var buf [ScalarSize]byte
	buf[15] = 1 // 2^128 in big-endian, < r
	if err := a.UnmarshalBinary(buf[:]); err != nil {
		panic(err)
	}
	b.Mul(&a, &a)
	return
}()

// reduce48 returns the 48-byte big-endian integer u modulo r in constant
// time and without math/big: u = c2·2^256 + c1·2^128 + c0 with 16-byte
// chunks, each < 2^128 < r.
func reduce48(u []byte) *bls12381.Scalar {
	var c [3]bls12381.Scalar
	for i := range c {
		var buf [ScalarSize]byte
		copy(buf[16:], u[16*i:16*i+16])
		if err := c[i].UnmarshalBinary(buf[:]); err != nil {
			panic("pairing: unreachable: 128-bit chunk ≥ r")
		}
	}
	s := new(bls12381.Scalar)
	var t bls12381.Scalar
	s.Mul(&c[0], &two256)
	t.Mul(&c[1], &two128)
	s.Add(s, &t)
	s.Add(s, &c[2])
	return s
}

// transcript builds a message in the spec's "‖" encoding.
type transcript []byte

func (t transcript) id(id string) transcript {
	t = binary.BigEndian.AppendUint16(t, uint16(len(id)))
	return append(t, id...)
}
func (t transcript) u64(v uint64) transcript      { return binary.BigEndian.AppendUint64(t, v) }
func (t transcript) raw(b []byte) transcript      { return append(t, b...) }
func (t transcript) g1(p *bls12381.G1) transcript { return append(t, p.BytesCompressed()...) }
func (t transcript) g2(p *bls12381.G2) transcript { return append(t, p.BytesCompressed()...) }
func (t transcript) scalar(s *bls12381.Scalar) transcript {
	b, _ := s.MarshalBinary()
	return append(t, b...)
}

// permitPoint returns T_d = H1_TP(d ‖ id).
func permitPoint(id string, day uint64) *bls12381.G1 {
	return H1(DomainTP, transcript(nil).u64(day).id(id))
}

// ePermitPoint is permitPoint in the build's engine.
func ePermitPoint(id string, day uint64) *eG1 {
	return eHashG1(DomainTP, transcript(nil).u64(day).id(id))
}

// secretScalar decodes a 32-byte big-endian secret scalar in constant time
// (circl's UnmarshalBinary compares with r byte by byte, and SetBytes uses
// math/big): reduce it as a 48-byte integer, then compare the result with
// the input in constant time to reject values ≥ r.
func secretScalar(b []byte) (*bls12381.Scalar, error) {
	if len(b) != ScalarSize {
		return nil, decodeErr("scalar", ErrLength)
	}
	var buf [48]byte
	copy(buf[16:], b)
	s := reduce48(buf[:])
	clear(buf[:])
	enc, _ := s.MarshalBinary()
	defer clear(enc)
	if subtle.ConstantTimeCompare(enc, b) != 1 {
		return nil, decodeErr("scalar ≥ r", ErrNonCanonical)
	}
	if s.IsZero() == 1 {
		return nil, decodeErr("scalar", ErrZeroScalar)
	}
	return s, nil
}
