package ciphersuite

import (
	"bytes"
	"testing"
)

// Fuzz targets for every body parser and for RecordCipher.Open:
//
//	go test -run='^$' -fuzz='^FuzzRecordOpen$' -fuzztime=5s ./ciphersuite
//
// Invariants: no panic; every failure is an *AlertError; whatever is
// accepted is well formed (re-encodes to the input, or opens to what
// Seal would produce).

func mustAlert(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if _, ok := AlertOf(err); !ok {
		t.Fatalf("error without alert: %v", err)
	}
}

// fuzzClientSKE is shared by both client-side targets.
func fuzzClientSKE(t *testing.T, s *Suite, body []byte) {
	cfg := testClientConfig()
	var hint []byte
	cfg.PSK = func(h []byte) ([]byte, []byte, error) {
		hint = append([]byte(nil), h...)
		return testIdent, testPSK, nil
	}
	ck, err := NewClientKX(cfg, []*Suite{s})
	if err != nil {
		t.Fatal(err)
	}
	if err := ck.ProcessServerKeyExchange(s, body); err != nil {
		mustAlert(t, err)
		return
	}
	cke, pms, err := ck.GenerateClientKeyExchange(s)
	if err != nil {
		mustAlert(t, err)
		if s.KX == KXPSK {
			t.Fatalf("plain PSK body %x accepted, then: %v", body, err)
		}
		return
	}
	if len(body) < 2 || len(hint) != int(body[0])<<8|int(body[1]) || !bytes.Equal(hint, body[2:2+len(hint)]) {
		t.Fatalf("hint %x from body %x", hint, body)
	}
	if ck.PeerIdentity() != "" || pskHint(ck) != string(hint) || len(cke) < 2+len(testIdent) || len(pms) < 4+len(testPSK) {
		t.Fatalf("accepted %x: peer %q, cke %x", body, ck.PeerIdentity(), cke)
	}
	if s.KX == KXPSK && len(body) != 2+len(hint) {
		t.Fatalf("trailing bytes accepted: %x", body)
	}
}

func FuzzClientPSKServerKeyExchange(f *testing.F) {
	f.Add([]byte("\x00\x07srvhint"))
	f.Add([]byte("\x00\x00"))
	f.Add([]byte("\x00\x07srvhin"))
	f.Add([]byte("\x00\x07srvhintX"))
	s := ByID(0x00A8)
	f.Fuzz(func(t *testing.T, body []byte) { fuzzClientSKE(t, s, body) })
}

func FuzzClientECDHEPSKServerKeyExchange(f *testing.F) {
	for _, c := range DefaultCurves() {
		for _, hint := range []string{"", "srvhint"} {
			sc := testServerConfig(c)
			sc.Hint = []byte(hint)
			sk, _ := NewServerKX(sc, ByID(0xCCAC), &ClientHelloInfo{Curves: []CurveID{c}})
			ske, _ := sk.GenerateServerKeyExchange()
			f.Add(ske)
		}
	}
	f.Add(skeWithPoint(X25519, make([]byte, 32)))
	f.Add(skeWithPoint(P256, []byte{2, 1, 2, 3}))
	s := ByID(0xCCAC)
	f.Fuzz(func(t *testing.T, body []byte) { fuzzClientSKE(t, s, body) })
}

// fuzzServerCKE is shared by both server-side targets.
func fuzzServerCKE(t *testing.T, s *Suite, curve CurveID, body []byte) {
	sc := testServerConfig(curve)
	sc.PSK = func(id []byte) ([]byte, error) { return testPSK, nil } // every identity known
	sk, err := NewServerKX(sc, s, &ClientHelloInfo{Curves: []CurveID{curve}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sk.GenerateServerKeyExchange(); err != nil {
		t.Fatal(err)
	}
	pms, err := sk.ProcessClientKeyExchange(body)
	if err != nil {
		mustAlert(t, err)
		if sk.PeerIdentity() != "" {
			t.Fatal("identity exposed after failure")
		}
		return
	}
	id := sk.PeerIdentity()
	if len(body) < 2 || int(body[0])<<8|int(body[1]) != len(id) || string(body[2:2+len(id)]) != id {
		t.Fatalf("identity %q from body %x", id, body)
	}
	if s.KX == KXPSK && len(body) != 2+len(id) {
		t.Fatalf("trailing bytes accepted: %x", body)
	}
	if len(pms) < 4+len(testPSK) || !bytes.Equal(pms[len(pms)-len(testPSK):], testPSK) {
		t.Fatalf("pre-master secret %x", pms)
	}
}

func FuzzServerPSKClientKeyExchange(f *testing.F) {
	f.Add([]byte("\x00\x07client1"))
	f.Add([]byte("\x00\x00"))
	f.Add([]byte("\x00\x08client1"))
	s := ByID(0x00A8)
	f.Fuzz(func(t *testing.T, body []byte) { fuzzServerCKE(t, s, X25519, body) })
}

func FuzzServerECDHEPSKClientKeyExchange(f *testing.F) {
	for i, c := range DefaultCurves() {
		k, _ := generateKey(c, newDetRand(byte(i)))
		f.Add(uint8(i), withPoint("client1", k.PublicKey().Bytes()))
	}
	f.Add(uint8(0), withPoint("client1", make([]byte, 32)))
	f.Add(uint8(1), withPoint("", []byte{4, 0, 0}))
	s := ByID(0xD001)
	f.Fuzz(func(t *testing.T, sel uint8, body []byte) {
		curve := X25519
		if sel&1 == 1 {
			curve = P256
		}
		fuzzServerCKE(t, s, curve, body)
	})
}

func FuzzRecordOpen(f *testing.F) {
	ss := aeadSuites()
	ciphers := make([]RecordCipher, len(ss))
	for i, s := range ss {
		ciphers[i] = newTestCipher(f, s)
		for _, pt := range []string{"", "x", "application data of some length"} {
			f.Add(uint8(i), uint64(i+1), uint8(23), ciphers[i].Seal(nil, uint64(i+1), 23, 0x0303, []byte(pt)))
		}
		f.Add(uint8(i), uint64(0), uint8(22), make([]byte, ciphers[i].Overhead()-1))
	}
	f.Fuzz(func(t *testing.T, sel uint8, seq uint64, typ uint8, frag []byte) {
		i := int(sel) % len(ciphers)
		c := ciphers[i]
		orig := append([]byte(nil), frag...)
		pt, err := c.Open(make([]byte, 0, 4), seq, typ, 0x0303, frag)
		if err != nil {
			if a, _ := AlertOf(err); a != AlertBadRecordMAC || pt != nil {
				t.Fatalf("Open error %v, %x", err, pt)
			}
			if !bytes.Equal(frag, orig) {
				t.Fatal("Open modified its input")
			}
			return
		}
		if len(pt) != len(frag)-c.Overhead() {
			t.Fatalf("plaintext length %d from %d", len(pt), len(frag))
		}
		if re := c.Seal(nil, seq, typ, 0x0303, pt); !bytes.Equal(re, frag) {
			t.Fatalf("opened record does not re-seal: %x", frag)
		}
	})
}
