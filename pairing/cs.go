package pairing

import (
	"crypto/sha256"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// Milagro CS (docs/protocol.md §3): M-Pin Full with a forward-secret key agreement.

// CSHello is what the client sends in the milagro_cs ClientHello extension:
// (id, d, t, U, V, id_S).
type CSHello struct {
	ID       string // client identity
	Day      uint64 // permit day, 0 without a permit
	Time     uint64 // client time, Unix seconds
	U        []byte // 48-byte compressed G1
	V        []byte // 48-byte compressed G1
	ServerID string // id_S, the server identity the client expects ("" = deployment-wide key)

	dec *csDecoded // set by DecodeElements
}

// CSClient is a client prepared from its key (or PIN token and PIN) and
// optional permit, with e(K', B_S) cached per server identity. It is safe
// for concurrent use and serves any number of handshakes.
type CSClient struct {
	id  string
	day uint64
	a   bls12381.G1  // A, or A' = A + T_d with a permit
	ae  *eG1         // a in the engine
	aB  []byte       // a encoded
	k   *eG1         // K, or K' = K + TP_d
	eKB *cache[*eGT] // e(K', B_S) by id_S
}

// csClientServers bounds the cache of e(K', B_S) of one client (a client
// talks to few server identities; 576 bytes each).
const csClientServers = 64

// NewCSClient prepares a client from its full key and, if permit is not nil,
// its combined time permit (which must be for the same identity).
func NewCSClient(key *CSClientKey, permit *TimePermit) (*CSClient, error) {
	if key == nil {
		return nil, ErrMismatch
	}
	if err := CheckID(key.id); err != nil {
		return nil, err
	}
	if err := checkCombined("CS client key", key.origin); err != nil {
		return nil, err
	}
	if err := checkG1(&key.k); err != nil {
		return nil, err
	}
	c := &CSClient{id: key.id, eKB: newCache[*eGT](csClientServers)}
	k := eG1From(&key.k)
	c.a = *H1(DomainCS, []byte(key.id))
	if permit != nil {
		if permit.id != key.id || permit.day == 0 {
			eZeroG1(k)
			return nil, ErrMismatch
		}
		if err := checkCombined("time permit", permit.origin); err != nil {
			eZeroG1(k)
			return nil, err
		}
		if !permit.sameDTAs(key.origin) {
			eZeroG1(k)
			return nil, fmt.Errorf("%w: the key is from D-TAs %s, the permit for day %d from %s", ErrDTASet,
				FormatFingerprints(key.dtas), permit.day, FormatFingerprints(permit.dtas))
		}
		if err := permit.checkPoint(); err != nil {
			eZeroG1(k)
			return nil, err
		}
		c.day = permit.day
		c.a.Add(&c.a, permitPoint(key.id, permit.day))
		// K' = K + TP_d in the engine, where the permit's point is held.
		eAdd(k, k, &permit.e)
	}
	if eIsIdentity(k) || c.a.IsIdentity() {
		eZeroG1(k)
		return nil, ErrIdentity
	}
	c.k, c.ae, c.aB = k, eG1From(&c.a), c.a.BytesCompressed()
	c.pairingFor("") // the common case, computed up front
	return c, nil
}

// pairingFor returns e(K', B_S) for server identity idS, cached.
func (c *CSClient) pairingFor(idS string) *eGT {
	return c.eKB.get(idS, func() *eGT {
		if idS == "" {
			return ePair([]*eG1{c.k}, []*eLines{eGenLines()})
		}
		return ePair([]*eG1{c.k}, []*eLines{ePrepare(eHashG2(DomainCS, []byte(idS)))})
	})
}

// NewCSClientWithPIN prepares a client from its PIN token and the PIN the
// user typed (a wrong PIN gives a client whose handshakes fail at the
// server), and an optional permit.
func NewCSClientWithPIN(token *PINToken, pin uint32, permit *TimePermit) (*CSClient, error) {
	if token == nil {
		return nil, ErrMismatch
	}
	key, err := token.AddPIN(pin)
	if err != nil {
		return nil, err
	}
	defer key.Zeroize()
	return NewCSClient(key, permit)
}

// ID returns the client identity.
func (c *CSClient) ID() string { return c.id }

// Day returns the permit day, or 0 without a permit.
func (c *CSClient) Day() uint64 { return c.day }

// Zeroize overwrites the client's secrets.
func (c *CSClient) Zeroize() {
	if c.k != nil {
		eZeroG1(c.k)
	}
	c.eKB.mu.Lock()
	for k, v := range c.eKB.m {
		eGTZero(v)
		delete(c.eKB.m, k)
	}
	c.eKB.mu.Unlock()
}

// CSClientHandshake is the client's state for one handshake.
type CSClientHandshake struct {
	c     *CSClient
	x     bls12381.Scalar
	hello CSHello
	y     bls12381.Scalar
	eKB   *eGT // e(K', B_S) for hello.ServerID
}

// Hello starts a handshake at client time t (Unix seconds) with the server
// identity idS ("" for the deployment-wide server key): x ←$ Z_r,
// U = x·A, y = Hq_CS(t ‖ id ‖ d ‖ U ‖ id_S), V = −(x + y)·K.
func (c *CSClient) Hello(rand io.Reader, t uint64, idS string) (*CSHello, *CSClientHandshake, error) {
	if c == nil || c.id == "" || c.eKB == nil || c.k == nil {
		return nil, nil, ErrUnusable
	}
	if idS != "" {
		if err := CheckID(idS); err != nil {
			return nil, nil, err
		}
	}
	x, err := randomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	h, hs := c.helloWith(x, t, idS)
	return h, hs, nil
}

// helloWith is Hello with a given x, which it erases.
func (c *CSClient) helloWith(x *bls12381.Scalar, t uint64, idS string) (*CSHello, *CSClientHandshake) {
	var u, v eG1
	eMul(&u, x, c.ae)
	uBytes := eBytesG1(&u)
	y := Hq(DomainCS, transcript(nil).u64(t).id(c.id).u64(c.day).raw(uBytes).id(idS))
	var e bls12381.Scalar
	e.Add(x, y)
	e.Neg()
	eMul(&v, &e, c.k)
	e = bls12381.Scalar{}
	hs := &CSClientHandshake{c: c, x: *x, y: *y, eKB: c.pairingFor(idS)}
	*x = bls12381.Scalar{}
	hs.hello = CSHello{ID: c.id, Day: c.day, Time: t, U: uBytes, V: eBytesG1(&v), ServerID: idS}
	h := hs.hello
	h.U, h.V = append([]byte(nil), h.U...), append([]byte(nil), h.V...)
	return &h, hs
}

// Finish takes the server's W: r ←$ Z_r, R = r·A,
// h = Hq_CS(A ‖ U ‖ y ‖ V ‖ R ‖ W), g = e(K', B_S)^(r+h), z = x·W. It returns R
// for the ClientKeyExchange and the 32-byte pre-master secret. The
// handshake's secrets are erased; Finish may be called once.
func (hs *CSClientHandshake) Finish(rand io.Reader, wBytes []byte) (rBytes, pms []byte, err error) {
	return hs.finishFrom(rand, wBytes, nil)
}

// FinishPQ is Finish for the post-quantum hybrid (docs/protocol.md §5b):
// ss is the 32-byte ML-KEM-768 shared secret, and the pre-master secret is
// SHA-256("MTLS1-CS-PQ-PMS" ‖ GT(g) ‖ G1(z) ‖ ss).
func (hs *CSClientHandshake) FinishPQ(rand io.Reader, wBytes, ss []byte) (rBytes, pms []byte, err error) {
	if len(ss) != PQSecretSize {
		return nil, nil, ErrLength
	}
	return hs.finishFrom(rand, wBytes, ss)
}

// finishFrom decodes W, draws r and finishes; ss is nil for the classic
// pre-master secret.
func (hs *CSClientHandshake) finishFrom(rand io.Reader, wBytes, ss []byte) (rBytes, pms []byte, err error) {
	if hs == nil || hs.c == nil {
		return nil, nil, ErrUnusable
	}
	w, err := eDecodeG1(wBytes)
	if err != nil {
		return nil, nil, err
	}
	r, err := randomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	rBytes, pms = hs.finish(r, w, wBytes, ss)
	return rBytes, pms, nil
}

// finish is Finish with a given r, which it erases, and decoded W; ss is
// the hybrid's ML-KEM secret (nil: the classic pre-master secret).
func (hs *CSClientHandshake) finish(r *bls12381.Scalar, w *eG1, wBytes, ss []byte) (rBytes, pms []byte) {
	defer func() { *r = bls12381.Scalar{}; hs.x = bls12381.Scalar{}; hs.c = nil }()
	var rp, z eG1
	eMul(&rp, r, hs.c.ae)
	rBytes = eBytesG1(&rp)
	h := csHB(hs.c.aB, hs.hello.U, &hs.y, hs.hello.V, rBytes, wBytes)
	var e bls12381.Scalar
	e.Add(r, h)
	g := eGTExp(hs.eKB, &e)
	e = bls12381.Scalar{}
	eMul(&z, &hs.x, w)
	return rBytes, premaster(csPMSLabel, g, &z, ss)
}

const (
	csPMSLabel  = "MTLS1-CS-PMS"
	p2pPMSLabel = "MTLS1-P2P-PMS"
	// The hybrid labels (docs/protocol.md §5b) replace the classic ones
	// when an ML-KEM secret is mixed in.
	csPQPMSLabel  = "MTLS1-CS-PQ-PMS"
	p2pPQPMSLabel = "MTLS1-P2P-PQ-PMS"
)

// PQSecretSize is the size of the ML-KEM-768 shared secret the hybrid
// pre-master secrets take.
const PQSecretSize = 32

// csY computes y = Hq_CS(t ‖ id ‖ d ‖ U ‖ id_S).
func csY(h *CSHello) *bls12381.Scalar {
	return Hq(DomainCS, transcript(nil).u64(h.Time).id(h.ID).u64(h.Day).raw(h.U).id(h.ServerID))
}

// csH computes h = Hq_CS(A ‖ U ‖ y ‖ V ‖ R ‖ W).
func csH(a *csPoint, u []byte, y *bls12381.Scalar, v, r, w []byte) *bls12381.Scalar {
	return csHB(a.b, u, y, v, r, w)
}

// csHB is csH with A encoded.
func csHB(a, u []byte, y *bls12381.Scalar, v, r, w []byte) *bls12381.Scalar {
	return Hq(DomainCS, transcript(nil).raw(a).raw(u).scalar(y).raw(v).raw(r).raw(w))
}

// premaster returns SHA-256(label ‖ GT(g) ‖ G1(z)), or with an ML-KEM
// secret ss the hybrid SHA-256(PQ label ‖ GT(g) ‖ G1(z) ‖ ss).
func premaster(label string, g *eGT, z *eG1, ss []byte) []byte {
	if ss != nil {
		switch label {
		case csPMSLabel:
			label = csPQPMSLabel
		case p2pPMSLabel:
			label = p2pPQPMSLabel
		default:
			panic("pairing: no hybrid form of " + label) // a programming error
		}
	}
	d := sha256.New()
	d.Write([]byte(label))
	gb := gtBytes(g)
	d.Write(gb)
	clear(gb)
	d.Write(eBytesG1(z))
	d.Write(ss)
	return d.Sum(nil)
}

// CSServer verifies clients and answers handshakes with the server key K_S
// of one server identity. It is safe for concurrent use.
type CSServer struct {
	id      string
	ks      bls12381.G2
	ksLines *eLines          // Miller-loop lines of K_S
	bsLines *eLines          // Miller-loop lines of B_S (public)
	points  *cache[*csPoint] // A or A' by (id, d)
	fp      [32]byte         // KeyFingerprint
}

// csPoint is a client's A (or A'), with its encoding and, once a client
// has proved that identity twice on that day, a table for the public
// multiplications y·A′ and h·A′. Only verified hellos count, so a flood of
// bogus identities cannot make the server build and keep tables; and a
// client that connects once a day costs no table (85 µs, 3 KB).
type csPoint struct {
	p        eG1
	b        []byte
	verified atomic.Int32
	tab      atomic.Pointer[eTable]
}

// mulPublic sets out = k·A′ for a public scalar k.
func (a *csPoint) mulPublic(out *eG1, k *bls12381.Scalar) {
	if t := a.tab.Load(); t != nil {
		eMulTable(out, k, t)
		return
	}
	eMulPublic(out, k, &a.p)
}

// NewCSServer prepares a server from a combined server key.
func NewCSServer(secret *CSServerSecret) (*CSServer, error) {
	if secret == nil {
		return nil, ErrMismatch
	}
	if err := checkCombined("CS server key", secret.origin); err != nil {
		return nil, err
	}
	if err := checkG2(&secret.k); err != nil {
		return nil, err
	}
	bs := eGenLines()
	if secret.id != "" {
		bs = ePrepare(eHashG2(DomainCS, []byte(secret.id)))
	}
	enc, err := secret.MarshalBinary()
	return &CSServer{id: secret.id, ks: secret.k, ksLines: ePrepare(eG2From(&secret.k)), bsLines: bs,
		points: newCache[*csPoint](csCacheSize), fp: keyFingerprint("MTLS1-CS-server-key", enc, err)}, nil
}

// ID returns the server identity id_S this server proves ("" for the
// deployment-wide key).
func (s *CSServer) ID() string { return s.id }

// Zeroize overwrites the server key.
func (s *CSServer) Zeroize() { s.ks.SetIdentity(); eZeroLines(s.ksLines) }

// CSServerHandshake is the server's state for one handshake, after the
// client's proof verified.
type CSServerHandshake struct {
	s     *CSServer
	id    string
	a     *csPoint
	u     *eG1
	uB    []byte
	vB    []byte
	y     bls12381.Scalar
	w     bls12381.Scalar
	wB    []byte
	spent bool
}

// Verify checks the client's M-Pin proof: it decodes U and V, computes A
// (A' = A + T_d when Day ≠ 0) and y, and checks e(V,B_S)·e(U + y·A, K_S) = 1
// as one product of pairings. It does not check the time or the day against
// a policy: see CheckTime and CheckPermitDay. Errors: ErrInvalidID, the
// decoding errors, ErrMismatch (a hello for another server identity),
// ErrAuthFailed.
func (s *CSServer) Verify(h *CSHello) error {
	_, err := s.verify(h)
	return err
}

func (s *CSServer) verify(h *CSHello) (*CSServerHandshake, error) {
	if s == nil || s.ksLines == nil || s.points == nil {
		return nil, ErrUnusable
	}
	if h == nil {
		return nil, ErrMismatch
	}
	if err := CheckID(h.ID); err != nil {
		return nil, err
	}
	if h.ServerID != s.id {
		return nil, ErrMismatch
	}
	u, v, err := h.elements()
	if err != nil {
		return nil, err
	}
	hs := &CSServerHandshake{s: s, id: h.ID, u: u}
	hs.a = s.points.get(string(transcript(nil).u64(h.Day).id(h.ID)), func() *csPoint {
		a := eHashG1(DomainCS, []byte(h.ID))
		if h.Day != 0 {
			eAdd(a, a, eHashG1(DomainTP, transcript(nil).u64(h.Day).id(h.ID)))
		}
		return &csPoint{p: *a, b: eBytesG1(a)}
	})
	hs.y = *csY(h)
	var uy eG1
	hs.a.mulPublic(&uy, &hs.y)
	eAdd(&uy, &uy, u)
	if eIsIdentity(&uy) {
		return nil, ErrAuthFailed
	}
	// The M-Pin check stays a check of its own. Folding it into the key
	// pairing (one product e(V,B_S)·e(U+yA+R+hA, K_S)) would save a final
	// exponentiation but let anyone holding e(K', B_S), a value clients
	// cache, agree on a pre-master secret without K'.
	e := ePair([]*eG1{v, &uy}, []*eLines{s.bsLines, s.ksLines})
	if !eGTIsOne(e) {
		return nil, ErrAuthFailed
	}
	if hs.a.tab.Load() == nil && hs.a.verified.Add(1) == 2 {
		hs.a.tab.Store(eTableOf(&hs.a.p))
	}
	hs.uB = append([]byte(nil), h.U...)
	hs.vB = append([]byte(nil), h.V...)
	return hs, nil
}

// Accept verifies the client's proof (as Verify) and starts the server's
// side of the key agreement: w ←$ Z_r, W = w·A.
func (s *CSServer) Accept(rand io.Reader, h *CSHello) (*CSServerHandshake, error) {
	hs, err := s.verify(h)
	if err != nil {
		return nil, err
	}
	w, err := randomScalar(rand)
	if err != nil {
		return nil, err
	}
	hs.setW(w)
	return hs, nil
}

// setW sets w (erasing the argument) and W = w·A.
func (hs *CSServerHandshake) setW(w *bls12381.Scalar) {
	hs.w = *w
	*w = bls12381.Scalar{}
	var wp eG1
	eMul(&wp, &hs.w, &hs.a.p)
	hs.wB = eBytesG1(&wp)
}

// ID returns the verified client identity.
func (hs *CSServerHandshake) ID() string { return hs.id }

// W returns the 48-byte W for the ServerKeyExchange.
func (hs *CSServerHandshake) W() []byte { return append([]byte(nil), hs.wB...) }

// Finish takes the client's R: h = Hq_CS(A ‖ U ‖ y ‖ V ‖ R ‖ W),
// g = e(R + h·A, K_S), z = w·U; it returns the 32-byte pre-master secret and
// erases w. Finish may be called once.
func (hs *CSServerHandshake) Finish(rBytes []byte) ([]byte, error) {
	return hs.finish(rBytes, nil)
}

// FinishPQ is Finish for the post-quantum hybrid (docs/protocol.md §5b)
// with the 32-byte ML-KEM-768 shared secret ss: the pre-master secret is
// SHA-256("MTLS1-CS-PQ-PMS" ‖ GT(g) ‖ G1(z) ‖ ss).
func (hs *CSServerHandshake) FinishPQ(rBytes, ss []byte) ([]byte, error) {
	if len(ss) != PQSecretSize {
		return nil, ErrLength
	}
	return hs.finish(rBytes, ss)
}

func (hs *CSServerHandshake) finish(rBytes, ss []byte) ([]byte, error) {
	if hs == nil || hs.s == nil || hs.spent {
		return nil, ErrUnusable
	}
	r, err := eDecodeG1(rBytes)
	if err != nil {
		return nil, err
	}
	hs.spent = true
	defer func() { hs.w = bls12381.Scalar{} }()
	h := csH(hs.a, hs.uB, &hs.y, hs.vB, rBytes, hs.wB)
	var rh, z eG1
	hs.a.mulPublic(&rh, h)
	eAdd(&rh, &rh, r)
	if eIsIdentity(&rh) { // R = −h·A: a forged R; no secret to agree on
		return nil, ErrAuthFailed
	}
	g := ePair([]*eG1{&rh}, []*eLines{hs.s.ksLines})
	eMul(&z, &hs.w, hs.u)
	return premaster(csPMSLabel, g, &z, ss), nil
}
