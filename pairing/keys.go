package pairing

import (
	"fmt"
	"io"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// randomScalar draws a uniform non-zero scalar from rand (docs/protocol.md §1: secret
// scalars come from Scalar.Random, never SetBytes).
func randomScalar(rand io.Reader) (*bls12381.Scalar, error) {
	s := new(bls12381.Scalar)
	for i := 0; i < 64; i++ {
		if err := s.Random(rand); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRandom, err)
		}
		if s.IsZero() == 0 {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: only zero scalars", ErrRandom)
}

// checkG1 and checkG2 reject points that are not valid group elements
// (such as those of zero-value keys) and the identity.
func checkG1(p *bls12381.G1) error {
	if !p.IsOnG1() {
		return ErrUnusable
	}
	if p.IsIdentity() {
		return ErrIdentity
	}
	return nil
}

func checkG2(p *bls12381.G2) error {
	if !p.IsOnG2() {
		return ErrUnusable
	}
	if p.IsIdentity() {
		return ErrIdentity
	}
	return nil
}

// MasterShare is one D-TA's share s_i of the master secret s = Σ s_i.
type MasterShare struct{ s bls12381.Scalar }

// NewMasterShare draws a random non-zero master share from rand.
func NewMasterShare(rand io.Reader) (*MasterShare, error) {
	s, err := randomScalar(rand)
	if err != nil {
		return nil, err
	}
	return &MasterShare{s: *s}, nil
}

// CSClientKey is a Milagro CS client key share s_i·H1_CS(id), or (after
// CombineCSClientKeys) the full key K_C = s·H1_CS(id).
type CSClientKey struct {
	origin
	id string
	k  bls12381.G1
}

// CSServerSecret is a CS server key share s_i·B_S, or the combined
// K_S = s·B_S, for the server identity id_S: B_S = H2_CS(id_S), or the
// generator Q for the empty identity (one deployment-wide server key).
type CSServerSecret struct {
	origin
	id string
	k  bls12381.G2
}

// ServerPoint returns B_S for a server identity (docs/protocol.md §2): Q for "",
// H2_CS(id) otherwise.
func ServerPoint(id string) *bls12381.G2 {
	if id == "" {
		return bls12381.G2Generator()
	}
	return H2(DomainCS, []byte(id))
}

// TimePermit is a time permit share s_i·H1_TP(d ‖ id), or the combined
// TP_d = s·T_d, for one identity and one day.
//
// The point is held in the build's pairing engine (see Engine): an
// endpoint decodes a share from every D-TA each day, checks it and adds
// them up, and on the blst engine all of that is blst's (decompression,
// subgroup check, addition), several times cheaper than circl's.
type TimePermit struct {
	origin
	id    string
	day   uint64
	e     eG1
	state permitState
}

// permitState says what a TimePermit's point is known to be, so that the
// subgroup check, which costs more than decoding, runs once, when the
// point comes in (UnmarshalBinary), and never on a point computed here.
type permitState uint8

const (
	// permitUnset: a zero TimePermit, which holds no point (ErrUnusable).
	permitUnset permitState = iota
	// permitValid: in G1, not the identity (decoded by UnmarshalBinary,
	// computed by IssueTimePermit or CombineTimePermits).
	permitValid
	// permitIdentity: the identity (a zeroized permit, or the share of a
	// zero master share).
	permitIdentity
)

// checkPoint is checkG1 for the permit's point.
func (p *TimePermit) checkPoint() error {
	switch p.state {
	case permitValid:
		return nil
	case permitIdentity:
		return ErrIdentity
	}
	return ErrUnusable
}

// PINToken is a CS client key with a PIN taken out: token = K_C − pin·A.
type PINToken struct {
	origin
	id string
	t  bls12381.G1
}

// P2PKey is a Milagro P2P key (share): K1 = p·H1_P2P(id) in G1 and
// K2 = p·H2_P2P(id) in G2, p = Σ p_i being the P2P master secret (docs/protocol.md §2).
type P2PKey struct {
	origin
	id string
	k1 bls12381.G1
	k2 bls12381.G2
}

// ID returns the identity the key belongs to.
func (k *CSClientKey) ID() string { return k.id }

// ID returns the server identity id_S ("" for the deployment-wide key).
func (k *CSServerSecret) ID() string { return k.id }

// ID returns the identity the permit belongs to.
func (p *TimePermit) ID() string { return p.id }

// Day returns the day (days since 1970-01-01 UTC) the permit is for.
func (p *TimePermit) Day() uint64 { return p.day }

// ID returns the identity the token belongs to.
func (t *PINToken) ID() string { return t.id }

// ID returns the identity the key belongs to.
func (k *P2PKey) ID() string { return k.id }

// IssueCSClientKey returns this D-TA's share s_i·H1_CS(id) of id's CS key.
func (m *MasterShare) IssueCSClientKey(id string) (*CSClientKey, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	k := &CSClientKey{origin: shareOrigin(m), id: id}
	k.k.ScalarMult(&m.s, H1(DomainCS, []byte(id)))
	return k, nil
}

// IssueCSServerSecret returns this D-TA's share s_i·Q of the deployment-wide
// CS server key (server identity "").
func (m *MasterShare) IssueCSServerSecret() *CSServerSecret {
	k, _ := m.IssueCSServerKey("")
	return k
}

// IssueCSServerKey returns this D-TA's share s_i·B_S of the CS server key for
// server identity id ("" is the deployment-wide key, B_S = Q).
func (m *MasterShare) IssueCSServerKey(id string) (*CSServerSecret, error) {
	if id != "" {
		if err := CheckID(id); err != nil {
			return nil, err
		}
	}
	k := &CSServerSecret{origin: shareOrigin(m), id: id}
	k.k.ScalarMult(&m.s, ServerPoint(id))
	return k, nil
}

// IssueTimePermit returns this D-TA's share s_i·H1_TP(d ‖ id) of id's
// permit for day d (days since 1970-01-01 UTC; d ≥ 1, since 0 means "no
// permit" on the wire).
func (m *MasterShare) IssueTimePermit(id string, day uint64) (*TimePermit, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if day == 0 {
		return nil, ErrPermitDay
	}
	p := &TimePermit{origin: shareOrigin(m), id: id, day: day}
	eMul(&p.e, &m.s, ePermitPoint(id, day))
	// A multiple of a G1 point; the identity only for a zero share.
	p.state = permitValid
	if eIsIdentity(&p.e) {
		p.state = permitIdentity
	}
	return p, nil
}

// IssueP2PKey returns this D-TA's share (p_i·H1_P2P(id), p_i·H2_P2P(id)),
// p_i being derived from s_i (docs/protocol.md §2), so P2P keys share no master secret
// with CS keys.
func (m *MasterShare) IssueP2PKey(id string) (*P2PKey, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	p := m.p2pShare()
	defer func() { *p = bls12381.Scalar{} }()
	k := &P2PKey{origin: shareOrigin(m), id: id}
	k.k1.ScalarMult(p, H1(DomainP2P, []byte(id)))
	k.k2.ScalarMult(p, H2(DomainP2P, []byte(id)))
	return k, nil
}

// CombineCSClientKeys adds the shares issued by every D-TA into the full key.
// All shares must be for the same identity.
func CombineCSClientKeys(shares ...*CSClientKey) (*CSClientKey, error) {
	if len(shares) == 0 || shares[0] == nil {
		return nil, ErrMismatch
	}
	out := &CSClientKey{id: shares[0].id}
	out.k.SetIdentity()
	origins := make([]origin, 0, len(shares))
	for _, s := range shares {
		if s == nil || s.id != out.id {
			return nil, ErrMismatch
		}
		origins = append(origins, s.origin)
		if err := checkG1(&s.k); err != nil {
			return nil, err
		}
		out.k.Add(&out.k, &s.k)
	}
	o, err := combineOrigins(origins)
	if err != nil {
		return nil, err
	}
	out.origin = o
	if out.k.IsIdentity() {
		return nil, ErrIdentity
	}
	return out, nil
}

// CombineCSServerSecrets adds the server key shares of every D-TA (same
// server identity).
func CombineCSServerSecrets(shares ...*CSServerSecret) (*CSServerSecret, error) {
	if len(shares) == 0 || shares[0] == nil {
		return nil, ErrMismatch
	}
	out := &CSServerSecret{id: shares[0].id}
	out.k.SetIdentity()
	origins := make([]origin, 0, len(shares))
	for _, s := range shares {
		if s == nil || s.id != out.id {
			return nil, ErrMismatch
		}
		origins = append(origins, s.origin)
		if err := checkG2(&s.k); err != nil {
			return nil, err
		}
		out.k.Add(&out.k, &s.k)
	}
	o, err := combineOrigins(origins)
	if err != nil {
		return nil, err
	}
	out.origin = o
	if out.k.IsIdentity() {
		return nil, ErrIdentity
	}
	return out, nil
}

// CombineTimePermits adds the permit shares of every D-TA. All must be for
// the same identity and day.
func CombineTimePermits(shares ...*TimePermit) (*TimePermit, error) {
	if len(shares) == 0 || shares[0] == nil {
		return nil, ErrMismatch
	}
	out := &TimePermit{id: shares[0].id, day: shares[0].day}
	eZeroG1(&out.e)
	origins := make([]origin, 0, len(shares))
	for _, s := range shares {
		if s == nil || s.id != out.id || s.day != out.day {
			return nil, ErrMismatch
		}
		origins = append(origins, s.origin)
		if err := s.checkPoint(); err != nil {
			return nil, err
		}
		eAdd(&out.e, &out.e, &s.e)
	}
	o, err := combineOrigins(origins)
	if err != nil {
		return nil, err
	}
	out.origin = o
	if eIsIdentity(&out.e) {
		return nil, ErrIdentity
	}
	out.state = permitValid // a sum of G1 points, not the identity
	return out, nil
}

// CombineP2PKeys adds the P2P key shares of every D-TA (same identity).
func CombineP2PKeys(shares ...*P2PKey) (*P2PKey, error) {
	if len(shares) == 0 || shares[0] == nil {
		return nil, ErrMismatch
	}
	out := &P2PKey{id: shares[0].id}
	out.k1.SetIdentity()
	out.k2.SetIdentity()
	origins := make([]origin, 0, len(shares))
	for _, s := range shares {
		if s == nil || s.id != out.id {
			return nil, ErrMismatch
		}
		origins = append(origins, s.origin)
		if err := checkG1(&s.k1); err != nil {
			return nil, err
		}
		if err := checkG2(&s.k2); err != nil {
			return nil, err
		}
		out.k1.Add(&out.k1, &s.k1)
		out.k2.Add(&out.k2, &s.k2)
	}
	o, err := combineOrigins(origins)
	if err != nil {
		return nil, err
	}
	out.origin = o
	if out.k1.IsIdentity() || out.k2.IsIdentity() {
		return nil, ErrIdentity
	}
	return out, nil
}

func pinScalar(pin uint32) (*bls12381.Scalar, error) {
	if pin == 0 || pin > MaxPIN { // PIN 0 would make the token the key
		return nil, ErrInvalidPIN
	}
	s := new(bls12381.Scalar)
	s.SetUint64(uint64(pin))
	return s, nil
}

// pinPoint returns pin·H1_CS(id) (constant time in pin).
func pinPoint(id string, pin uint32) (*bls12381.G1, error) {
	p, err := pinScalar(pin)
	if err != nil {
		return nil, err
	}
	out := new(bls12381.G1)
	out.ScalarMult(p, H1(DomainCS, []byte(id)))
	return out, nil
}

// ExtractPIN returns the token K_C − pin·A stored on the client device; the
// key itself should then be discarded (see Zeroize).
func (k *CSClientKey) ExtractPIN(pin uint32) (*PINToken, error) {
	if err := checkCombined("CS client key", k.origin); err != nil {
		return nil, err
	}
	if err := checkG1(&k.k); err != nil {
		return nil, err
	}
	pa, err := pinPoint(k.id, pin)
	if err != nil {
		return nil, err
	}
	pa.Neg()
	t := &PINToken{origin: k.origin, id: k.id}
	t.t.Add(&k.k, pa)
	return t, nil
}

// AddPIN re-adds pin·A to the token, giving back the key (which is the
// right key only with the right PIN).
func (t *PINToken) AddPIN(pin uint32) (*CSClientKey, error) {
	if err := checkG1(&t.t); err != nil {
		return nil, err
	}
	pa, err := pinPoint(t.id, pin)
	if err != nil {
		return nil, err
	}
	k := &CSClientKey{origin: t.origin, id: t.id}
	k.k.Add(&t.t, pa)
	return k, nil
}

// Zeroize overwrites the share.
func (m *MasterShare) Zeroize() { m.s = bls12381.Scalar{} }

// Zeroize overwrites the key.
func (k *CSClientKey) Zeroize() { k.k.SetIdentity() }

// Zeroize overwrites the secret.
func (k *CSServerSecret) Zeroize() { k.k.SetIdentity() }

// Zeroize overwrites the permit.
func (p *TimePermit) Zeroize() { eZeroG1(&p.e); p.state = permitIdentity }

// Zeroize overwrites the token.
func (t *PINToken) Zeroize() { t.t.SetIdentity() }

// Zeroize overwrites both keys.
func (k *P2PKey) Zeroize() { k.k1.SetIdentity(); k.k2.SetIdentity() }
