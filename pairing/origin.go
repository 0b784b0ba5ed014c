package pairing

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/expander"
)

// Fingerprint names a D-TA (docs/protocol.md §2): the first 8 bytes of
// SHA-256("MTLS1-DTA-ID" ‖ s_i). It is public.
type Fingerprint [8]byte

// String returns the 16 hex digits of the fingerprint.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// ParseFingerprint parses 16 hex digits.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	if len(s) != 2*len(f) {
		return f, fmt.Errorf("pairing: a D-TA fingerprint is 16 hex digits, got %q", s)
	}
	if _, err := hex.Decode(f[:], []byte(s)); err != nil {
		return f, fmt.Errorf("pairing: a D-TA fingerprint is 16 hex digits, got %q", s)
	}
	return f, nil
}

// FormatFingerprints joins fingerprints with commas.
func FormatFingerprints(fps []Fingerprint) string {
	s := make([]string, len(fps))
	for i, f := range fps {
		s[i] = f.String()
	}
	return strings.Join(s, ",")
}

// Fingerprint returns the D-TA fingerprint of this share.
func (m *MasterShare) Fingerprint() Fingerprint {
	b, _ := m.s.MarshalBinary()
	defer clear(b)
	d := sha256.New()
	d.Write([]byte("MTLS1-DTA-ID"))
	d.Write(b)
	var f Fingerprint
	copy(f[:], d.Sum(nil))
	return f
}

// p2pShare returns p_i = hash_to_field(s_i) with DST "MTLS1-P2P-MS" (docs/protocol.md §2:
// P2P keys come from their own master secret p = Σ p_i).
func (m *MasterShare) p2pShare() *bls12381.Scalar {
	b, _ := m.s.MarshalBinary()
	defer clear(b)
	u := expander.NewExpanderMD(crypto.SHA256, []byte("MTLS1-P2P-MS")).Expand(b, 48)
	defer clear(u)
	return reduce48(u)
}

// origin says where a key, permit or token came from: a share issued by one
// D-TA, or a combination of the shares of a set of D-TAs (sorted, distinct).
type origin struct {
	share bool
	dtas  []Fingerprint
}

func shareOrigin(m *MasterShare) origin {
	return origin{share: true, dtas: []Fingerprint{m.Fingerprint()}}
}

// IsShare reports whether this is one D-TA's share rather than a combined
// key (shares must be combined with CombineXxx before use).
func (o origin) IsShare() bool { return o.share }

// DTAs returns the fingerprints of the D-TAs this was issued or combined
// from, sorted.
func (o origin) DTAs() []Fingerprint { return slices.Clone(o.dtas) }

// sameDTAs reports whether both come from the same set of D-TAs.
func (o origin) sameDTAs(p origin) bool { return slices.Equal(o.dtas, p.dtas) }

// combineOrigins checks that every input is a share of a different D-TA
// and returns the combined origin.
func combineOrigins(in []origin) (origin, error) {
	out := origin{}
	for _, o := range in {
		if !o.share || len(o.dtas) != 1 {
			return origin{}, fmt.Errorf("%w: only shares issued by single D-TAs can be combined (got a combined key of D-TAs %s)", ErrMismatch, FormatFingerprints(o.dtas))
		}
		out.dtas = append(out.dtas, o.dtas[0])
	}
	slices.SortFunc(out.dtas, func(a, b Fingerprint) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < len(out.dtas); i++ {
		if out.dtas[i] == out.dtas[i-1] {
			return origin{}, fmt.Errorf("%w: D-TA %s", ErrDuplicateDTA, out.dtas[i])
		}
	}
	return out, nil
}

// checkCombined refuses a share where a combined key is needed.
func checkCombined(what string, o origin) error {
	if o.share {
		fp := ""
		if len(o.dtas) == 1 {
			fp = " of D-TA " + o.dtas[0].String()
		}
		return fmt.Errorf("%w: this %s is one D-TA's share%s, not a key: combine the shares of every D-TA first (mtls keys combine)", ErrShare, what, fp)
	}
	return nil
}

// encode appends the origin: flags (bit 0: share), count, fingerprints.
func (o origin) encode(t transcript) transcript {
	var flags byte
	if o.share {
		flags = 1
	}
	t = append(t, flags, byte(len(o.dtas)))
	for _, f := range o.dtas {
		t = append(t, f[:]...)
	}
	return t
}

// origin reads what encode wrote and checks it: at least one D-TA, one for
// a share, sorted and distinct.
func (r *keyReader) origin() origin {
	h := r.take(2, "origin")
	if h == nil {
		return origin{}
	}
	if h[0] > 1 {
		r.err = keyErr("origin flags", nil)
		return origin{}
	}
	o := origin{share: h[0] == 1}
	n := int(h[1])
	if n == 0 || (o.share && n != 1) {
		r.err = keyErr("origin: bad number of D-TAs", nil)
		return origin{}
	}
	for i := 0; i < n; i++ {
		v := r.take(8, "D-TA fingerprint")
		if v == nil {
			return origin{}
		}
		var f Fingerprint
		copy(f[:], v)
		if i > 0 && bytes.Compare(o.dtas[i-1][:], f[:]) >= 0 {
			r.err = keyErr("origin: D-TA fingerprints not sorted or repeated", nil)
			return origin{}
		}
		o.dtas = append(o.dtas, f)
	}
	return o
}
