package pairing

import (
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
)

// Milagro CS (spec §3): M-Pin Full with a forward-secret key agreement.

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
	a   bls12381.G1       // A, or A' = A + T_d with a permit
	k   bls12381.G1       // K, or K' = K + TP_d
	eKB *cache[*ff.URoot] // e(K', B_S) by id_S
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
	c := &CSClient{id: key.id, k: key.k, eKB: newCache[*ff.URoot](csClientServers)}
	c.a = *H1(DomainCS, []byte(key.id))
	if permit != nil {
		if permit.id != key.id || permit.day == 0 {
			return nil, ErrMismatch
		}
		if err := checkCombined("time permit", permit.origin); err != nil {
			return nil, err
		}
		if !permit.sameDTAs(key.origin) {
			return nil, fmt.Errorf("%w: the key is from D-TAs %s, the permit for day %d from %s", ErrDTASet,
				FormatFingerprints(key.dtas), permit.day, FormatFingerprints(permit.dtas))
		}
		if err := checkG1(&permit.p); err != nil {
			return nil, err
		}
		c.day = permit.day
		c.a.Add(&c.a, permitPoint(key.id, permit.day))
		c.k.Add(&c.k, &permit.p)
	}
	if c.k.IsIdentity() || c.a.IsIdentity() {
		return nil, ErrIdentity
	}
	c.pairingFor("") // the common case, computed up front
	return c, nil
}

// pairingFor returns e(K', B_S) for server identity idS, cached.
func (c *CSClient) pairingFor(idS string) *ff.URoot {
	return c.eKB.get(idS, func() *ff.URoot {
		if idS == "" {
			return multiPair([]*bls12381.G1{&c.k}, []*g2Lines{generatorLines()})
		}
		return multiPair([]*bls12381.G1{&c.k}, []*g2Lines{prepareG2(ServerPoint(idS))})
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
	c.k.SetIdentity()
	c.eKB.mu.Lock()
	for k, v := range c.eKB.m {
		*v = ff.URoot{}
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
	eKB   *ff.URoot // e(K', B_S) for hello.ServerID
}

// Hello starts a handshake at client time t (Unix seconds) with the server
// identity idS ("" for the deployment-wide server key): x ←$ Z_r,
// U = x·A, y = Hq_CS(t ‖ id ‖ d ‖ U ‖ id_S), V = −(x + y)·K.
func (c *CSClient) Hello(rand io.Reader, t uint64, idS string) (*CSHello, *CSClientHandshake, error) {
	if c == nil || c.id == "" || c.eKB == nil {
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
	var u, v bls12381.G1
	u.ScalarMult(x, &c.a)
	uBytes := u.BytesCompressed()
	y := Hq(DomainCS, transcript(nil).u64(t).id(c.id).u64(c.day).raw(uBytes).id(idS))
	var e bls12381.Scalar
	e.Add(x, y)
	e.Neg()
	v.ScalarMult(&e, &c.k)
	e = bls12381.Scalar{}
	hs := &CSClientHandshake{c: c, x: *x, y: *y, eKB: c.pairingFor(idS)}
	*x = bls12381.Scalar{}
	hs.hello = CSHello{ID: c.id, Day: c.day, Time: t, U: uBytes, V: v.BytesCompressed(), ServerID: idS}
	h := hs.hello
	h.U, h.V = append([]byte(nil), h.U...), append([]byte(nil), h.V...)
	return &h, hs
}

// Finish takes the server's W: r ←$ Z_r, R = r·A,
// h = Hq_CS(A ‖ U ‖ y ‖ V ‖ R ‖ W), g = e(K', B_S)^(r+h), z = x·W. It returns R
// for the ClientKeyExchange and the 32-byte pre-master secret. The
// handshake's secrets are erased; Finish may be called once.
func (hs *CSClientHandshake) Finish(rand io.Reader, wBytes []byte) (rBytes, pms []byte, err error) {
	if hs == nil || hs.c == nil {
		return nil, nil, ErrUnusable
	}
	w, err := DecodeG1(wBytes)
	if err != nil {
		return nil, nil, err
	}
	r, err := randomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	rBytes, pms = hs.finishWith(r, w, wBytes)
	return rBytes, pms, nil
}

// finishWith is Finish with a given r, which it erases, and decoded W.
func (hs *CSClientHandshake) finishWith(r *bls12381.Scalar, w *bls12381.G1, wBytes []byte) (rBytes, pms []byte) {
	defer func() { *r = bls12381.Scalar{}; hs.x = bls12381.Scalar{}; hs.c = nil }()
	var rp, z bls12381.G1
	rp.ScalarMult(r, &hs.c.a)
	rBytes = rp.BytesCompressed()
	h := csH(&hs.c.a, hs.hello.U, &hs.y, hs.hello.V, rBytes, wBytes)
	var e bls12381.Scalar
	e.Add(r, h)
	g := gtExp(hs.eKB, &e)
	e = bls12381.Scalar{}
	z.ScalarMult(&hs.x, w)
	return rBytes, premaster(csPMSLabel, g, &z)
}

const (
	csPMSLabel  = "MTLS1-CS-PMS"
	p2pPMSLabel = "MTLS1-P2P-PMS"
)

// csY computes y = Hq_CS(t ‖ id ‖ d ‖ U ‖ id_S).
func csY(h *CSHello) *bls12381.Scalar {
	return Hq(DomainCS, transcript(nil).u64(h.Time).id(h.ID).u64(h.Day).raw(h.U).id(h.ServerID))
}

// csH computes h = Hq_CS(A ‖ U ‖ y ‖ V ‖ R ‖ W).
func csH(a *bls12381.G1, u []byte, y *bls12381.Scalar, v, r, w []byte) *bls12381.Scalar {
	return Hq(DomainCS, transcript(nil).g1(a).raw(u).scalar(y).raw(v).raw(r).raw(w))
}

// premaster returns SHA-256(label ‖ GT(g) ‖ G1(z)).
func premaster(label string, g *ff.URoot, z *bls12381.G1) []byte {
	d := sha256.New()
	d.Write([]byte(label))
	gb := gtBytes(g)
	d.Write(gb)
	clear(gb)
	d.Write(z.BytesCompressed())
	return d.Sum(nil)
}

// CSServer verifies clients and answers handshakes with the server key K_S
// of one server identity. It is safe for concurrent use.
type CSServer struct {
	id      string
	ks      bls12381.G2
	ksLines *g2Lines            // Miller-loop lines of K_S
	bsLines *g2Lines            // Miller-loop lines of B_S (public)
	points  *cache[bls12381.G1] // A or A' by (id, d)
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
	bs := generatorLines()
	if secret.id != "" {
		bs = prepareG2(ServerPoint(secret.id))
	}
	return &CSServer{id: secret.id, ks: secret.k, ksLines: prepareG2(&secret.k), bsLines: bs,
		points: newCache[bls12381.G1](csCacheSize)}, nil
}

// ID returns the server identity id_S this server proves ("" for the
// deployment-wide key).
func (s *CSServer) ID() string { return s.id }

// Zeroize overwrites the server key.
func (s *CSServer) Zeroize() { s.ks.SetIdentity(); *s.ksLines = g2Lines{} }

// CSServerHandshake is the server's state for one handshake, after the
// client's proof verified.
type CSServerHandshake struct {
	s     *CSServer
	id    string
	a     bls12381.G1
	u     bls12381.G1
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
	hs := &CSServerHandshake{s: s, id: h.ID, u: *u}
	hs.a = s.points.get(string(transcript(nil).u64(h.Day).id(h.ID)), func() bls12381.G1 {
		a := H1(DomainCS, []byte(h.ID))
		if h.Day != 0 {
			a.Add(a, permitPoint(h.ID, h.Day))
		}
		return *a
	})
	hs.y = *csY(h)
	var uy bls12381.G1
	mulPublic(&uy, &hs.y, &hs.a)
	uy.Add(&uy, u)
	if uy.IsIdentity() {
		return nil, ErrAuthFailed
	}
	e := multiPair([]*bls12381.G1{v, &uy}, []*g2Lines{s.bsLines, s.ksLines})
	if e.IsIdentity() != 1 {
		return nil, ErrAuthFailed
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
	var wp bls12381.G1
	wp.ScalarMult(&hs.w, &hs.a)
	hs.wB = wp.BytesCompressed()
}

// ID returns the verified client identity.
func (hs *CSServerHandshake) ID() string { return hs.id }

// W returns the 48-byte W for the ServerKeyExchange.
func (hs *CSServerHandshake) W() []byte { return append([]byte(nil), hs.wB...) }

// Finish takes the client's R: h = Hq_CS(A ‖ U ‖ y ‖ V ‖ R ‖ W),
// g = e(R + h·A, K_S), z = w·U; it returns the 32-byte pre-master secret and
// erases w. Finish may be called once.
func (hs *CSServerHandshake) Finish(rBytes []byte) ([]byte, error) {
	if hs == nil || hs.s == nil || hs.spent {
		return nil, ErrUnusable
	}
	r, err := DecodeG1(rBytes)
	if err != nil {
		return nil, err
	}
	hs.spent = true
	defer func() { hs.w = bls12381.Scalar{} }()
	h := csH(&hs.a, hs.uB, &hs.y, hs.vB, rBytes, hs.wB)
	var rh, z bls12381.G1
	mulPublic(&rh, h, &hs.a)
	rh.Add(&rh, r)
	if rh.IsIdentity() { // R = −h·A: a forged R; no secret to agree on
		return nil, ErrAuthFailed
	}
	g := multiPair([]*bls12381.G1{&rh}, []*g2Lines{hs.s.ksLines})
	z.ScalarMult(&hs.w, &hs.u)
	return premaster(csPMSLabel, g, &z), nil
}
