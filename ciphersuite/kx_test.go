package ciphersuite

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20"
)

// equalSecrets compares two secrets in constant time.
func equalSecrets(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// detRand is a deterministic randomness source (a ChaCha20 key stream).
type detRand struct{ c *chacha20.Cipher }

func newDetRand(seed byte) io.Reader {
	key := make([]byte, 32)
	key[0] = seed
	c, _ := chacha20.NewUnauthenticatedCipher(key, make([]byte, 12))
	return &detRand{c}
}

func (r *detRand) Read(p []byte) (int, error) {
	clear(p)
	r.c.XORKeyStream(p, p)
	return len(p), nil
}

// fixedRand returns its bytes, then fails.
type fixedRand struct{ b []byte }

func (r *fixedRand) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

var (
	testPSK   = []byte("0123456789abcdef0123456789abcdef")
	testIdent = []byte("client1")
)

func pskSuites() []*Suite { return append(ByKX(KXECDHEPSK), ByKX(KXPSK)...) }

func testClientConfig(curves ...CurveID) *ClientConfig {
	if len(curves) == 0 {
		curves = DefaultCurves()
	}
	return &ClientConfig{
		Rand:   newDetRand(1),
		Curves: curves,
		PSK:    func(hint []byte) ([]byte, []byte, error) { return testIdent, testPSK, nil },
	}
}

func testServerConfig(curves ...CurveID) *ServerConfig {
	if len(curves) == 0 {
		curves = DefaultCurves()
	}
	return &ServerConfig{
		Rand:   newDetRand(2),
		Curves: curves,
		Hint:   []byte("srvhint"),
		PSK: func(id []byte) ([]byte, error) {
			if bytes.Equal(id, testIdent) {
				return testPSK, nil
			}
			return nil, errors.New("no such client")
		},
	}
}

// runKX runs one key exchange and returns both pre-master secrets.
func runKX(t *testing.T, s *Suite, cc *ClientConfig, sc *ServerConfig) (cpms, spms []byte, ck ClientKX, sk ServerKX) {
	t.Helper()
	ck, err := NewClientKX(cc, []*Suite{s})
	if err != nil {
		t.Fatalf("%s: NewClientKX: %v", s, err)
	}
	if exts, err := ck.HelloExtensions(); err != nil || len(exts) != 0 {
		t.Fatalf("%s: HelloExtensions = %v, %v", s, exts, err)
	}
	hello := &ClientHelloInfo{Curves: cc.Curves, PointFormats: []uint8{0}}
	if !sc.Supports(s, hello) {
		t.Fatalf("%s: server does not support", s)
	}
	sk, err = NewServerKX(sc, s, hello)
	if err != nil {
		t.Fatalf("%s: NewServerKX: %v", s, err)
	}
	ske, err := sk.GenerateServerKeyExchange()
	if err != nil {
		t.Fatalf("%s: GenerateServerKeyExchange: %v", s, err)
	}
	if err := ck.ProcessServerKeyExchange(s, ske); err != nil {
		t.Fatalf("%s: ProcessServerKeyExchange: %v", s, err)
	}
	cke, cpms, err := ck.GenerateClientKeyExchange(s)
	if err != nil {
		t.Fatalf("%s: GenerateClientKeyExchange: %v", s, err)
	}
	spms, err = sk.ProcessClientKeyExchange(cke)
	if err != nil {
		t.Fatalf("%s: ProcessClientKeyExchange: %v", s, err)
	}
	return cpms, spms, ck, sk
}

func TestKXRoundTrip(t *testing.T) {
	for _, s := range pskSuites() {
		for _, curve := range DefaultCurves() {
			for _, hint := range []string{"", "srvhint"} {
				name := fmt.Sprintf("%s/%s/hint=%q", s, curve, hint)
				var gotHint []byte
				sawHint := false
				cc := testClientConfig(curve)
				cc.PSK = func(h []byte) ([]byte, []byte, error) {
					gotHint, sawHint = h, true
					return testIdent, testPSK, nil
				}
				sc := testServerConfig()
				sc.Hint = []byte(hint)
				cpms, spms, ck, sk := runKX(t, s, cc, sc)
				if !equalSecrets(cpms, spms) {
					t.Fatalf("%s: pre-master secrets differ", name)
				}
				if !sawHint || string(gotHint) != hint || (hint == "" && gotHint != nil) {
					t.Errorf("%s: client callback saw hint %q", name, gotHint)
				}
				// uint16 len ‖ other ‖ uint16 len ‖ psk
				otherLen := len(testPSK)
				if s.KX == KXECDHEPSK {
					otherLen = 32 // X25519 and P-256 shared secrets
				}
				if len(cpms) != 4+otherLen+len(testPSK) ||
					int(binary.BigEndian.Uint16(cpms)) != otherLen ||
					int(binary.BigEndian.Uint16(cpms[2+otherLen:])) != len(testPSK) ||
					!bytes.Equal(cpms[4+otherLen:], testPSK) {
					t.Errorf("%s: malformed pre-master secret %x", name, cpms)
				}
				if s.KX == KXPSK && !bytes.Equal(cpms[2:2+otherLen], make([]byte, otherLen)) {
					t.Errorf("%s: plain PSK other_secret is not zero", name)
				}
				if sk.PeerIdentity() != string(testIdent) || ck.LocalIdentity() != string(testIdent) || ck.PeerIdentity() != "" || pskHint(ck) != hint {
					t.Errorf("%s: identities %q %q %q (hint %q)", name, sk.PeerIdentity(), ck.LocalIdentity(), ck.PeerIdentity(), pskHint(ck))
				}
				if s.KX == KXPSK {
					break // the curve does not matter
				}
			}
		}
	}
}

// TestPlainPSKKnownAnswer checks the exact wire bodies and pre-master
// secret of plain PSK (RFC 4279 §2).
func TestPlainPSKKnownAnswer(t *testing.T) {
	s := ByID(0x00A8)
	sc := testServerConfig()
	sc.Hint = nil
	sk, _ := NewServerKX(sc, s, &ClientHelloInfo{})
	if ske, err := sk.GenerateServerKeyExchange(); err != nil || ske != nil {
		t.Fatalf("no hint: ServerKeyExchange %x, %v; want none", ske, err)
	}
	pms, err := sk.ProcessClientKeyExchange([]byte("\x00\x07client1"))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{0, 32}, make([]byte, 32)...), 0, 32), testPSK...)
	if !bytes.Equal(pms, want) {
		t.Fatalf("pms %x", pms)
	}
	ck, _ := NewClientKX(testClientConfig(), []*Suite{s})
	if err := ck.ProcessServerKeyExchange(s, nil); err != nil {
		t.Fatal(err)
	}
	body, cpms, err := ck.GenerateClientKeyExchange(s)
	if err != nil || string(body) != "\x00\x07client1" || !bytes.Equal(cpms, want) {
		t.Fatalf("client: %q %x %v", body, cpms, err)
	}
	sc.Hint = []byte("h")
	sk, _ = NewServerKX(sc, s, &ClientHelloInfo{})
	if ske, _ := sk.GenerateServerKeyExchange(); string(ske) != "\x00\x01h" {
		t.Fatalf("ServerKeyExchange with hint %x", ske)
	}
}

// TestECDHEPSKKnownAnswer uses the RFC 7748 §6.1 X25519 vector: the
// server's ephemeral key is Alice's, the client's is Bob's.
func TestECDHEPSKKnownAnswer(t *testing.T) {
	alicePriv := mustHex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	alicePub := mustHex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	bobPriv := mustHex(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
	bobPub := mustHex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
	shared := mustHex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
	s := ByID(0xCCAC)
	sc := testServerConfig()
	sc.Rand = &fixedRand{alicePriv}
	cc := testClientConfig(X25519)
	cc.Rand = &fixedRand{bobPriv}
	cpms, spms, _, _ := runKX(t, s, cc, sc)
	want := append(append(append([]byte{0, 32}, shared...), 0, 32), testPSK...)
	if !bytes.Equal(cpms, want) || !bytes.Equal(spms, want) {
		t.Fatalf("pms\n%x\n%x\nwant %x", cpms, spms, want)
	}
	// The server's body: hint, named_curve, x25519(29), point.
	sc.Rand = &fixedRand{alicePriv}
	sk, _ := NewServerKX(sc, s, &ClientHelloInfo{Curves: []CurveID{X25519}})
	ske, _ := sk.GenerateServerKeyExchange()
	wantSKE := append([]byte("\x00\x07srvhint\x03\x00\x1d\x20"), alicePub...)
	if !bytes.Equal(ske, wantSKE) {
		t.Fatalf("ServerKeyExchange %x", ske)
	}
	pms, err := sk.ProcessClientKeyExchange(append([]byte("\x00\x07client1\x20"), bobPub...))
	if err != nil || !bytes.Equal(pms, want) {
		t.Fatalf("server with Bob's point: %x %v", pms, err)
	}
}

func TestKXDeterministic(t *testing.T) {
	s := ByID(0xD001)
	a1, _, _, _ := runKX(t, s, testClientConfig(), testServerConfig())
	a2, _, _, _ := runKX(t, s, testClientConfig(), testServerConfig())
	if !bytes.Equal(a1, a2) {
		t.Error("same Rand, different pre-master secrets")
	}
}

func TestWrongPSK(t *testing.T) {
	for _, s := range pskSuites() {
		cc := testClientConfig()
		other := bytes.Repeat([]byte{'x'}, 32)
		cc.PSK = func([]byte) ([]byte, []byte, error) { return testIdent, other, nil }
		cpms, spms, _, _ := runKX(t, s, cc, testServerConfig())
		if equalSecrets(cpms, spms) {
			t.Errorf("%s: different PSKs gave the same pre-master secret", s)
		}
	}
}

func wantAlert(t *testing.T, what string, err error, want Alert) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, want)
	}
	var ae *AlertError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: %v is not an *AlertError", what, err)
	}
	if a, _ := AlertOf(err); a != want {
		t.Fatalf("%s: alert %s (%v), want %s", what, a, err, want)
	}
}

// serverParse returns a server key exchange for s that has sent its
// ServerKeyExchange, and that body.
func serverParse(t *testing.T, s *Suite, sc *ServerConfig, curves ...CurveID) (ServerKX, []byte) {
	t.Helper()
	if len(curves) == 0 {
		curves = DefaultCurves()
	}
	sk, err := NewServerKX(sc, s, &ClientHelloInfo{Curves: curves})
	if err != nil {
		t.Fatal(err)
	}
	ske, err := sk.GenerateServerKeyExchange()
	if err != nil {
		t.Fatal(err)
	}
	return sk, ske
}

func TestUnknownIdentity(t *testing.T) {
	for _, s := range pskSuites() {
		cc := testClientConfig()
		cc.PSK = func([]byte) ([]byte, []byte, error) { return []byte("mallory"), testPSK, nil }
		ck, _ := NewClientKX(cc, []*Suite{s})
		sk, ske := serverParse(t, s, testServerConfig())
		if err := ck.ProcessServerKeyExchange(s, ske); err != nil {
			t.Fatal(err)
		}
		cke, _, err := ck.GenerateClientKeyExchange(s)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sk.ProcessClientKeyExchange(cke)
		wantAlert(t, s.Name+" unknown identity", err, AlertUnknownPSKIdentity)
		if !strings.Contains(err.Error(), "mallory") || sk.PeerIdentity() != "" {
			t.Errorf("%s: %v / %q", s, err, sk.PeerIdentity())
		}

		// A known identity that VerifyPeerIdentity rejects.
		sc := testServerConfig()
		denied := errors.New("not today")
		sc.VerifyPeerIdentity = func(id string) error {
			if id != string(testIdent) {
				t.Errorf("VerifyPeerIdentity(%q)", id)
			}
			return denied
		}
		ck, _ = NewClientKX(testClientConfig(), []*Suite{s})
		sk, ske = serverParse(t, s, sc)
		ck.ProcessServerKeyExchange(s, ske)
		cke, _, _ = ck.GenerateClientKeyExchange(s)
		_, err = sk.ProcessClientKeyExchange(cke)
		wantAlert(t, s.Name+" rejected identity", err, AlertUnknownPSKIdentity)
		if !errors.Is(err, denied) {
			t.Errorf("%s: cause lost: %v", s, err)
		}
	}
}

func TestLongIdentity(t *testing.T) {
	long := bytes.Repeat([]byte{'i'}, MaxPSKIdentityLen)
	for _, s := range pskSuites() {
		cc := testClientConfig()
		cc.PSK = func([]byte) ([]byte, []byte, error) { return long, testPSK, nil }
		sc := testServerConfig()
		sc.Hint = long
		sc.PSK = func(id []byte) ([]byte, error) {
			if !bytes.Equal(id, long) {
				return nil, errors.New("?")
			}
			return testPSK, nil
		}
		cpms, spms, _, sk := runKX(t, s, cc, sc)
		if !bytes.Equal(cpms, spms) || sk.PeerIdentity() != string(long) {
			t.Fatalf("%s: 65535-byte identity failed", s)
		}
		cc.PSK = func([]byte) ([]byte, []byte, error) { return append(long, 'x'), testPSK, nil }
		ck, _ := NewClientKX(cc, []*Suite{s})
		_, ske := serverParse(t, s, sc)
		ck.ProcessServerKeyExchange(s, ske)
		_, _, err := ck.GenerateClientKeyExchange(s)
		wantAlert(t, "65536-byte identity", err, AlertInternalError)
	}
	sc := testServerConfig()
	sc.Hint = append(long, 'x')
	_, err := NewServerKX(sc, ByID(0x00A8), &ClientHelloInfo{})
	wantAlert(t, "65536-byte hint", err, AlertInternalError)
}

func TestClientConfigErrors(t *testing.T) {
	s := ByID(0x00A8)
	cases := []struct {
		name     string
		identity []byte
		key      []byte
		err      error
		want     Alert
	}{
		{"empty identity", nil, testPSK, nil, AlertInternalError},
		{"15-byte PSK", testIdent, testPSK[:15], nil, AlertInternalError},
		{"513-byte PSK", testIdent, make([]byte, 513), nil, AlertInternalError},
		{"callback error", nil, nil, errors.New("no key"), AlertHandshakeFailure},
	}
	for _, c := range cases {
		cc := testClientConfig()
		cc.PSK = func([]byte) ([]byte, []byte, error) { return c.identity, c.key, c.err }
		ck, _ := NewClientKX(cc, []*Suite{s})
		ck.ProcessServerKeyExchange(s, nil)
		_, _, err := ck.GenerateClientKeyExchange(s)
		wantAlert(t, c.name, err, c.want)
	}
	// 16 and 512 bytes are fine.
	for _, n := range []int{16, 512} {
		key := bytes.Repeat([]byte{1}, n)
		cc := testClientConfig()
		cc.PSK = func([]byte) ([]byte, []byte, error) { return testIdent, key, nil }
		sc := testServerConfig()
		sc.PSK = func([]byte) ([]byte, error) { return key, nil }
		cpms, spms, _, _ := runKX(t, s, cc, sc)
		if !bytes.Equal(cpms, spms) {
			t.Fatalf("%d-byte PSK", n)
		}
	}
	// A server whose callback returns a bad key.
	sc := testServerConfig()
	sc.PSK = func([]byte) ([]byte, error) { return make([]byte, 8), nil }
	sk, _ := NewServerKX(sc, s, &ClientHelloInfo{})
	_, err := sk.ProcessClientKeyExchange([]byte("\x00\x01a"))
	wantAlert(t, "server 8-byte PSK", err, AlertInternalError)
}

func TestSupports(t *testing.T) {
	plain, ecdhe := ByID(0x00A8), ByID(0xCCAC)
	cc := testClientConfig()
	if !cc.Supports(plain) || !cc.Supports(ecdhe) {
		t.Error("client with PSK and curves")
	}
	if (&ClientConfig{}).Supports(plain) || (&ClientConfig{Curves: DefaultCurves()}).Supports(ecdhe) ||
		(&ClientConfig{PSK: cc.PSK, Curves: []CurveID{99}}).Supports(ecdhe) {
		t.Error("client without PSK / known curves")
	}
	if !(&ClientConfig{PSK: cc.PSK}).Supports(ecdhe) {
		t.Error("empty Curves should mean DefaultCurves")
	}
	var nilc *ClientConfig
	if nilc.Supports(plain) || cc.Supports(nil) {
		t.Error("nil")
	}
	for _, s := range append(ByKX(KXMilagroCS), ByKX(KXMilagroP2P)...) {
		_ = cc.Supports(s) // routed to milagro.go; must not panic
		_ = testServerConfig().Supports(s, nil)
	}
	sc := testServerConfig(P256)
	if !sc.Supports(plain, nil) || !sc.Supports(ecdhe, &ClientHelloInfo{Curves: []CurveID{X25519, P256}}) {
		t.Error("server with PSK")
	}
	if sc.Supports(ecdhe, &ClientHelloInfo{Curves: []CurveID{X25519}}) || sc.Supports(ecdhe, nil) {
		t.Error("server ECDHE without common curve")
	}
	if sc.Supports(ecdhe, &ClientHelloInfo{Curves: []CurveID{P256}, PointFormats: []uint8{1, 2}}) {
		t.Error("server ECDHE without uncompressed points")
	}
	if (&ServerConfig{Curves: DefaultCurves()}).Supports(plain, nil) {
		t.Error("server without PSK")
	}
	if !(&ServerConfig{PSK: sc.PSK}).Supports(ecdhe, &ClientHelloInfo{Curves: []CurveID{P256}}) {
		t.Error("server: empty Curves should mean DefaultCurves")
	}
	_, err := NewServerKX(testServerConfig(P256), ecdhe, &ClientHelloInfo{Curves: []CurveID{X25519}})
	wantAlert(t, "NewServerKX without common curve", err, AlertHandshakeFailure)
	_, err = NewServerKX(&ServerConfig{Rand: newDetRand(0)}, plain, nil)
	wantAlert(t, "NewServerKX without PSK", err, AlertHandshakeFailure)
}

// TestServerCurveChoice: the server's preference wins among the client's.
func TestServerCurveChoice(t *testing.T) {
	s := ByID(0xD001)
	for _, pref := range [][]CurveID{{P256, X25519}, {X25519, P256}} {
		_, ske := serverParse(t, s, testServerConfig(pref...), X25519, P256)
		if got := CurveID(binary.BigEndian.Uint16(ske[2+7+1:])); got != pref[0] {
			t.Errorf("server prefers %v, chose %v", pref, got)
		}
	}
}

func TestCompositeClientKX(t *testing.T) {
	cc := testClientConfig()
	ck, err := NewClientKX(cc, pskSuites())
	if err != nil {
		t.Fatal(err)
	}
	if ext, err := ck.HelloExtensions(); err != nil || len(ext) != 0 {
		t.Fatal(ext, err)
	}
	if ck.PeerIdentity() != "" || ck.LocalIdentity() != "" {
		t.Error("identities before the handshake")
	}
	// A suite whose kind was not offered.
	ck2, _ := NewClientKX(cc, ByKX(KXPSK))
	wantAlert(t, "unoffered kind", ck2.ProcessServerKeyExchange(ByID(0xCCAC), []byte{0, 0}), AlertIllegalParameter)
	// Switching kinds mid-handshake.
	ck.ProcessServerKeyExchange(ByID(0x00A8), nil)
	_, _, err = ck.GenerateClientKeyExchange(ByID(0xCCAC))
	wantAlert(t, "kind switch", err, AlertInternalError)
	// ECDHE_PSK requires a ServerKeyExchange.
	ck3, _ := NewClientKX(cc, ByKX(KXECDHEPSK))
	wantAlert(t, "missing ECDHE SKE", ck3.ProcessServerKeyExchange(ByID(0xCCAC), nil), AlertUnexpectedMessage)
	_, _, err = ck3.GenerateClientKeyExchange(ByID(0xCCAC))
	wantAlert(t, "CKE without SKE", err, AlertUnexpectedMessage)

	// A client offering every PSK suite completes whichever the server picks.
	for _, s := range pskSuites() {
		ck, _ := NewClientKX(testClientConfig(), pskSuites())
		sk, ske := serverParse(t, s, testServerConfig())
		if err := ck.ProcessServerKeyExchange(s, ske); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		cke, cpms, err := ck.GenerateClientKeyExchange(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		spms, err := sk.ProcessClientKeyExchange(cke)
		if err != nil || !equalSecrets(cpms, spms) || ck.LocalIdentity() != string(testIdent) || ck.PeerIdentity() != "" || pskHint(ck) != "srvhint" {
			t.Fatalf("%s: composite exchange failed: %v", s, err)
		}
	}
	// Milagro suites without Milagro credentials are refused up front.
	for _, k := range []KXKind{KXMilagroCS, KXMilagroP2P} {
		if _, err := NewClientKX(cc, ByKX(k)); err == nil {
			t.Errorf("%s offered without credentials", k)
		}
	}
	if _, err := NewClientKX(&ClientConfig{Rand: newDetRand(0)}, pskSuites()); err == nil {
		t.Error("NewClientKX without PSK callback")
	}
	if _, err := NewClientKX(cc, nil); err == nil {
		t.Error("NewClientKX with no suites")
	}
	if _, err := NewServerKX(nil, ByID(0x00A8), nil); err == nil {
		t.Error("NewServerKX(nil config)")
	}
}

func TestCurvePublicKeyEncoding(t *testing.T) {
	// Sanity: our points are what crypto/ecdh parses back.
	for _, c := range DefaultCurves() {
		k, err := generateKey(c, newDetRand(3))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parsePoint(c, k.PublicKey().Bytes()); err != nil {
			t.Fatal(c, err)
		}
	}
	if _, err := generateKey(P256, &fixedRand{bytes.Repeat([]byte{0xff}, 32)}); err == nil {
		t.Error("P-256 scalar >= n accepted, then EOF not reported")
	}
}

// pskHint is the unauthenticated psk_identity_hint a PSK client saw.
func pskHint(ck ClientKX) string {
	if h, ok := ck.(interface{ PSKIdentityHint() string }); ok {
		return h.PSKIdentityHint()
	}
	return "<none>"
}
