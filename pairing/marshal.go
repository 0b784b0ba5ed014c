package pairing

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// Binary key-file encodings: tag ‖ version ‖ body, where the body uses the
// spec's "‖" (uint16-prefixed identity, uint64 day, compressed elements).
// A consumer wraps them in PEM blocks of its own types.
const (
	tagMasterShare    = 0x01
	tagCSClientKey    = 0x02
	tagCSServerSecret = 0x03
	tagTimePermit     = 0x04
	tagPINToken       = 0x05
	tagP2PKey         = 0x06
	keyVersion        = 0x02 // revision 2: keys carry their origin (D-TA fingerprints)
)

func keyErr(what string, err error) error {
	if err == nil {
		return fmt.Errorf("%w: %s", ErrKeyEncoding, what)
	}
	return fmt.Errorf("%w: %s: %w", ErrKeyEncoding, what, err)
}

// keyReader parses a key encoding without ever reading past its end.
type keyReader struct {
	b   []byte
	err error
}

func newKeyReader(b []byte, tag byte, what string) *keyReader {
	r := &keyReader{b: b}
	if len(b) < 2 || b[0] != tag || b[1] != keyVersion {
		r.err = keyErr(what+": bad tag or version", nil)
		return r
	}
	r.b = b[2:]
	return r
}

func (r *keyReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = keyErr(what+": truncated", ErrLength)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *keyReader) id() string {
	l := r.take(2, "identity length")
	if l == nil {
		return ""
	}
	v := r.take(int(binary.BigEndian.Uint16(l)), "identity")
	if r.err != nil {
		return ""
	}
	id := string(v)
	if err := CheckID(id); err != nil {
		r.err = keyErr("identity", err)
	}
	return id
}

// idOpt reads a possibly empty identity (a CS server identity).
func (r *keyReader) idOpt() string {
	if r.err != nil {
		return ""
	}
	if len(r.b) >= 2 && r.b[0] == 0 && r.b[1] == 0 {
		r.b = r.b[2:]
		return ""
	}
	return r.id()
}

func (r *keyReader) u64(what string) uint64 {
	v := r.take(8, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (r *keyReader) g1(dst *bls12381.G1) {
	v := r.take(G1Size, "G1 element")
	if v == nil {
		return
	}
	p, err := DecodeG1(v)
	if err != nil {
		r.err = keyErr("G1 element", err)
		return
	}
	*dst = *p
}

// eg1 reads a G1 element into the build's engine, with DecodeG1's checks
// and errors (eDecodeG1): on the blst engine, blst's decompression and
// subgroup check.
func (r *keyReader) eg1(dst *eG1) {
	v := r.take(G1Size, "G1 element")
	if v == nil {
		return
	}
	p, err := eDecodeG1(v)
	if err != nil {
		r.err = keyErr("G1 element", err)
		return
	}
	*dst = *p
	eZeroG1(p)
}

func (r *keyReader) g2(dst *bls12381.G2) {
	v := r.take(G2Size, "G2 element")
	if v == nil {
		return
	}
	p, err := DecodeG2(v)
	if err != nil {
		r.err = keyErr("G2 element", err)
		return
	}
	*dst = *p
}

func (r *keyReader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = keyErr("trailing bytes", ErrLength)
	}
	return r.err
}

func keyHeader(tag byte) transcript { return transcript{tag, keyVersion} }

// MarshalBinary encodes the share for a key file (tag, version, 32-byte scalar).
func (m *MasterShare) MarshalBinary() ([]byte, error) {
	if m.s.IsZero() == 1 {
		return nil, ErrZeroScalar
	}
	return keyHeader(tagMasterShare).scalar(&m.s), nil
}

// UnmarshalBinary decodes a share written by MarshalBinary.
func (m *MasterShare) UnmarshalBinary(b []byte) error {
	r := newKeyReader(b, tagMasterShare, "master share")
	v := r.take(ScalarSize, "scalar")
	if err := r.end(); err != nil {
		return err
	}
	s, err := secretScalar(v)
	if err != nil {
		return keyErr("scalar", err)
	}
	m.s = *s
	*s = bls12381.Scalar{}
	return nil
}

// MarshalBinary encodes the key for a key file.
func (k *CSClientKey) MarshalBinary() ([]byte, error) {
	if err := firstErr(CheckID(k.id), checkG1(&k.k)); err != nil {
		return nil, err
	}
	return k.origin.encode(keyHeader(tagCSClientKey)).id(k.id).g1(&k.k), nil
}

// UnmarshalBinary decodes a key written by MarshalBinary.
func (k *CSClientKey) UnmarshalBinary(b []byte) error {
	r := newKeyReader(b, tagCSClientKey, "CS client key")
	var out CSClientKey
	out.origin = r.origin()
	out.id = r.id()
	r.g1(&out.k)
	if err := r.end(); err != nil {
		return err
	}
	*k = out
	return nil
}

// MarshalBinary encodes the secret for a key file.
func (k *CSServerSecret) MarshalBinary() ([]byte, error) {
	if err := checkG2(&k.k); err != nil {
		return nil, err
	}
	return k.origin.encode(keyHeader(tagCSServerSecret)).id(k.id).g2(&k.k), nil
}

// UnmarshalBinary decodes a secret written by MarshalBinary.
func (k *CSServerSecret) UnmarshalBinary(b []byte) error {
	r := newKeyReader(b, tagCSServerSecret, "CS server secret")
	var out CSServerSecret
	out.origin = r.origin()
	out.id = r.idOpt()
	r.g2(&out.k)
	if err := r.end(); err != nil {
		return err
	}
	*k = out
	return nil
}

// MarshalBinary encodes the permit for a key file.
func (p *TimePermit) MarshalBinary() ([]byte, error) {
	if err := firstErr(CheckID(p.id), p.checkPoint()); err != nil {
		return nil, err
	}
	return p.origin.encode(keyHeader(tagTimePermit)).id(p.id).u64(p.day).raw(eBytesG1(&p.e)), nil
}

// UnmarshalBinary decodes a permit written by MarshalBinary.
func (p *TimePermit) UnmarshalBinary(b []byte) error {
	r := newKeyReader(b, tagTimePermit, "time permit")
	var out TimePermit
	out.origin = r.origin()
	out.id = r.id()
	out.day = r.u64("day")
	r.eg1(&out.e)
	if err := r.end(); err != nil {
		eZeroG1(&out.e)
		return err
	}
	if out.day == 0 {
		eZeroG1(&out.e)
		return keyErr("day 0", ErrPermitDay)
	}
	out.state = permitValid // r.eg1 decoded it with DecodeG1's checks
	*p = out
	return nil
}

// MarshalBinary encodes the token for a key file.
func (t *PINToken) MarshalBinary() ([]byte, error) {
	if err := firstErr(CheckID(t.id), checkG1(&t.t)); err != nil {
		return nil, err
	}
	return t.origin.encode(keyHeader(tagPINToken)).id(t.id).g1(&t.t), nil
}

// UnmarshalBinary decodes a token written by MarshalBinary.
func (t *PINToken) UnmarshalBinary(b []byte) error {
	r := newKeyReader(b, tagPINToken, "PIN token")
	var out PINToken
	out.origin = r.origin()
	out.id = r.id()
	r.g1(&out.t)
	if err := r.end(); err != nil {
		return err
	}
	*t = out
	return nil
}

// MarshalBinary encodes the key pair for a key file.
func (k *P2PKey) MarshalBinary() ([]byte, error) {
	if err := firstErr(CheckID(k.id), checkG1(&k.k1), checkG2(&k.k2)); err != nil {
		return nil, err
	}
	return k.origin.encode(keyHeader(tagP2PKey)).id(k.id).g1(&k.k1).g2(&k.k2), nil
}

// UnmarshalBinary decodes a key pair written by MarshalBinary.
func (k *P2PKey) UnmarshalBinary(b []byte) error {
	r := newKeyReader(b, tagP2PKey, "P2P key")
	var out P2PKey
	out.origin = r.origin()
	out.id = r.id()
	r.g1(&out.k1)
	r.g2(&out.k2)
	if err := r.end(); err != nil {
		return err
	}
	*k = out
	return nil
}

// Equal reports in constant time whether both shares are the same.
func (m *MasterShare) Equal(o *MasterShare) bool { return m.s.IsEqual(&o.s) == 1 }

// Equal reports whether both keys are the same (the point in constant time).
func (k *CSClientKey) Equal(o *CSClientKey) bool { return k.id == o.id && ctEqualG1(&k.k, &o.k) }

// Equal reports in constant time whether both secrets are the same.
func (k *CSServerSecret) Equal(o *CSServerSecret) bool { return k.id == o.id && ctEqualG2(&k.k, &o.k) }

// Equal reports whether both permits are the same (the point in constant time).
func (p *TimePermit) Equal(o *TimePermit) bool {
	return p.id == o.id && p.day == o.day &&
		subtle.ConstantTimeCompare(eBytesG1(&p.e), eBytesG1(&o.e)) == 1
}

// Equal reports whether both tokens are the same (the point in constant time).
func (t *PINToken) Equal(o *PINToken) bool { return t.id == o.id && ctEqualG1(&t.t, &o.t) }

// Equal reports whether both keys are the same (the points in constant time).
func (k *P2PKey) Equal(o *P2PKey) bool {
	return k.id == o.id && ctEqualG1(&k.k1, &o.k1) && ctEqualG2(&k.k2, &o.k2)
}

func ctEqualG1(a, b *bls12381.G1) bool {
	return subtle.ConstantTimeCompare(a.BytesCompressed(), b.BytesCompressed()) == 1
}

func ctEqualG2(a, b *bls12381.G2) bool {
	return subtle.ConstantTimeCompare(a.BytesCompressed(), b.BytesCompressed()) == 1
}

// redacted formats a secret without its contents, for every fmt verb.
func redacted(f fmt.State, s string) { _, _ = f.Write([]byte(s)) }

func withID(typ, id string) string {
	return "pairing." + typ + "{id=" + strconv.Quote(id) + ", <redacted>}"
}

func (m MasterShare) String() string { return "pairing.MasterShare{<redacted>}" }
func (k CSClientKey) String() string { return withID("CSClientKey", k.id) }
func (k CSServerSecret) String() string {
	return "pairing.CSServerSecret{server_id=" + strconv.Quote(k.id) + ", <redacted>}"
}
func (p TimePermit) String() string {
	return "pairing.TimePermit{id=" + strconv.Quote(p.id) + ", day=" +
		strconv.FormatUint(p.day, 10) + ", <redacted>}"
}
func (t PINToken) String() string { return withID("PINToken", t.id) }
func (k P2PKey) String() string   { return withID("P2PKey", k.id) }

// Format prints String() for every verb, so no verb can leak the secret.
func (m MasterShare) Format(f fmt.State, _ rune) { redacted(f, m.String()) }

// Format prints String() for every verb, so no verb can leak the secret.
func (k CSClientKey) Format(f fmt.State, _ rune) { redacted(f, k.String()) }

// Format prints String() for every verb, so no verb can leak the secret.
func (k CSServerSecret) Format(f fmt.State, _ rune) { redacted(f, k.String()) }

// Format prints String() for every verb, so no verb can leak the secret.
func (p TimePermit) Format(f fmt.State, _ rune) { redacted(f, p.String()) }

// Format prints String() for every verb, so no verb can leak the secret.
func (t PINToken) Format(f fmt.State, _ rune) { redacted(f, t.String()) }

// Format prints String() for every verb, so no verb can leak the secret.
func (k P2PKey) Format(f fmt.State, _ rune) { redacted(f, k.String()) }

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// ParseKey decodes any key-file encoding of this package, choosing the type
// from its tag: it returns a *MasterShare, *CSClientKey, *CSServerSecret,
// *TimePermit, *PINToken or *P2PKey.
func ParseKey(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, keyErr("empty", ErrLength)
	}
	var k interface{ UnmarshalBinary([]byte) error }
	switch b[0] {
	case tagMasterShare:
		k = new(MasterShare)
	case tagCSClientKey:
		k = new(CSClientKey)
	case tagCSServerSecret:
		k = new(CSServerSecret)
	case tagTimePermit:
		k = new(TimePermit)
	case tagPINToken:
		k = new(PINToken)
	case tagP2PKey:
		k = new(P2PKey)
	default:
		return nil, keyErr("unknown key type", nil)
	}
	if err := k.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return k, nil
}
