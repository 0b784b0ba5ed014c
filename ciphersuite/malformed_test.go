package ciphersuite

import (
	"crypto/ecdh"
	"crypto/elliptic"
	"fmt"
	"testing"
)

// Malformed, truncated and hostile key-exchange bodies.

// clientSKEAlert feeds body as the ServerKeyExchange of suite s to a fresh
// client offering curves and returns the error of processing it, or of
// generating the ClientKeyExchange (where the ECDH happens).
func clientSKEErr(s *Suite, body []byte, curves ...CurveID) error {
	ck, err := NewClientKX(testClientConfig(curves...), []*Suite{s})
	if err != nil {
		return err
	}
	if err := ck.ProcessServerKeyExchange(s, body); err != nil {
		return err
	}
	_, _, err = ck.GenerateClientKeyExchange(s)
	return err
}

func validCKE(t *testing.T, s *Suite, curve CurveID) (ServerKX, []byte) {
	t.Helper()
	ck, _ := NewClientKX(testClientConfig(curve), []*Suite{s})
	sk, ske := serverParse(t, s, testServerConfig(), curve)
	if err := ck.ProcessServerKeyExchange(s, ske); err != nil {
		t.Fatal(err)
	}
	cke, _, err := ck.GenerateClientKeyExchange(s)
	if err != nil {
		t.Fatal(err)
	}
	return sk, cke
}

func serverCKEErr(t *testing.T, s *Suite, curve CurveID, body []byte) error {
	t.Helper()
	sk, _ := serverParse(t, s, testServerConfig(), curve)
	_, err := sk.ProcessClientKeyExchange(body)
	return err
}

func TestMalformedServerKeyExchange(t *testing.T) {
	for _, s := range pskSuites() {
		for _, curve := range DefaultCurves() {
			_, ske := serverParse(t, s, testServerConfig(), curve)
			if err := clientSKEErr(s, ske, curve); err != nil {
				t.Fatalf("%s/%s: valid body: %v", s, curve, err)
			}
			for n := 0; n < len(ske); n++ {
				wantAlert(t, fmt.Sprintf("%s/%s truncated to %d", s, curve, n), clientSKEErr(s, ske[:n], curve), AlertDecodeError)
			}
			trail := append(append([]byte(nil), ske...), 0)
			wantAlert(t, s.Name+" trailing byte", clientSKEErr(s, trail, curve), AlertDecodeError)
			if s.KX == KXPSK {
				break
			}
			// ske = 00 07 "srvhint" | 03 | group(2) | len(1) | point
			const o = 2 + 7
			bad := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), ske...)) }
			wantAlert(t, "curve_type explicit_prime", clientSKEErr(s, bad(func(b []byte) []byte { b[o] = 1; return b }), curve), AlertIllegalParameter)
			wantAlert(t, "unknown group", clientSKEErr(s, bad(func(b []byte) []byte { b[o+2] = 24; return b }), curve), AlertIllegalParameter)
			wantAlert(t, "empty point", clientSKEErr(s, append(ske[:o+3:o+3], 0), curve), AlertDecodeError)
			short := bad(func(b []byte) []byte { b[o+3]--; return b[:len(b)-1] })
			wantAlert(t, "short point", clientSKEErr(s, short, curve), AlertIllegalParameter)
			// The server picks a group the client did not offer.
			other := P256
			if curve == P256 {
				other = X25519
			}
			_, ske2 := serverParse(t, s, testServerConfig(), other)
			wantAlert(t, "unoffered group", clientSKEErr(s, ske2, curve), AlertIllegalParameter)
		}
	}
	// Plain PSK: an empty (non-nil) body is not "no ServerKeyExchange".
	wantAlert(t, "empty plain SKE", clientSKEErr(ByID(0x00A8), []byte{}), AlertDecodeError)
}

func TestMalformedClientKeyExchange(t *testing.T) {
	for _, s := range pskSuites() {
		for _, curve := range DefaultCurves() {
			_, cke := validCKE(t, s, curve)
			if err := serverCKEErr(t, s, curve, cke); err != nil {
				t.Fatalf("%s/%s: valid body: %v", s, curve, err)
			}
			for n := 0; n < len(cke); n++ {
				wantAlert(t, fmt.Sprintf("%s/%s truncated to %d", s, curve, n), serverCKEErr(t, s, curve, cke[:n]), AlertDecodeError)
			}
			trail := append(append([]byte(nil), cke...), 0)
			wantAlert(t, s.Name+" trailing byte", serverCKEErr(t, s, curve, trail), AlertDecodeError)
			if s.KX == KXPSK {
				break
			}
			// cke = 00 07 "client1" | len(1) | point
			const o = 2 + 7
			wantAlert(t, "empty point", serverCKEErr(t, s, curve, append(cke[:o:o], 0)), AlertDecodeError)
			short := append([]byte(nil), cke[:len(cke)-1]...)
			short[o]--
			wantAlert(t, "short point", serverCKEErr(t, s, curve, short), AlertIllegalParameter)
		}
	}
}

func withPoint(identity string, point []byte) []byte {
	b := []byte{0, byte(len(identity))}
	b = append(b, identity...)
	b = append(b, byte(len(point)))
	return append(b, point...)
}

func skeWithPoint(curve CurveID, point []byte) []byte {
	b := []byte{0, 0, 3, byte(curve >> 8), byte(curve)}
	b = append(b, byte(len(point)))
	return append(b, point...)
}

// TestBadPoints: low-order X25519 points (all-zero shared secret) and
// P-256 points that are compressed, infinity or off the curve are
// illegal_parameter, on both sides.
func TestBadPoints(t *testing.T) {
	p := elliptic.P256().Params()
	k, _ := generateKey(P256, newDetRand(7))
	good := k.PublicKey().Bytes()
	compressed := elliptic.MarshalCompressed(elliptic.P256(), p.Gx, p.Gy)
	offCurve := append([]byte(nil), good...)
	offCurve[64] ^= 1
	hybrid := append([]byte(nil), good...)
	hybrid[0] = 6 | good[64]&1
	tooBig := append([]byte{4}, p.P.FillBytes(make([]byte, 32))...)
	tooBig = append(tooBig, good[33:]...)

	cases := []struct {
		name  string
		curve CurveID
		point []byte
	}{
		{"X25519 zero", X25519, make([]byte, 32)},
		{"X25519 one (low order)", X25519, append([]byte{1}, make([]byte, 31)...)},
		{"X25519 order-8 point", X25519, mustHex(t, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")},
		{"X25519 33 bytes", X25519, make([]byte, 33)},
		{"P-256 compressed", P256, compressed},
		{"P-256 infinity", P256, []byte{0}},
		{"P-256 off curve", P256, offCurve},
		{"P-256 hybrid", P256, hybrid},
		{"P-256 x = p", P256, tooBig},
		{"P-256 64 bytes", P256, good[1:]},
		{"P-256 all zero", P256, append([]byte{4}, make([]byte, 64)...)},
	}
	for _, s := range ByKX(KXECDHEPSK) {
		for _, c := range cases {
			wantAlert(t, s.Name+" server: "+c.name, serverCKEErr(t, s, c.curve, withPoint("client1", c.point)), AlertIllegalParameter)
			wantAlert(t, s.Name+" client: "+c.name, clientSKEErr(s, skeWithPoint(c.curve, c.point), c.curve), AlertIllegalParameter)
		}
		// The valid P-256 point is accepted (control).
		if err := clientSKEErr(s, skeWithPoint(P256, good), P256); err != nil {
			t.Fatalf("valid point: %v", err)
		}
	}
	if _, err := ecdh.X25519().NewPublicKey(make([]byte, 32)); err != nil {
		t.Log("crypto/ecdh rejects the zero X25519 key at parse time")
	}
}

// TestNoPanicOnGarbage throws short random-ish bodies at every parser.
func TestNoPanicOnGarbage(t *testing.T) {
	r := newDetRand(9)
	for i := 0; i < 2000; i++ {
		b := make([]byte, i%80)
		r.Read(b)
		if i%3 == 0 && len(b) > 2 {
			b[0], b[1] = 0, byte(len(b)/3)
		}
		for _, s := range pskSuites() {
			if err := clientSKEErr(s, b); err == nil && s.KX == KXECDHEPSK {
				t.Fatalf("garbage accepted: %x", b)
			}
			sk, _ := serverParse(t, s, testServerConfig())
			sk.ProcessClientKeyExchange(b)
		}
	}
}
