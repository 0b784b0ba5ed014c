package handshake

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

var (
	testPSK      = []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	testIdentity = "client1"
)

func pskSuites() []*ciphersuite.Suite {
	return append(ciphersuite.ByKX(ciphersuite.KXECDHEPSK), ciphersuite.ByKX(ciphersuite.KXPSK)...)
}

func testConfigs(suites []*ciphersuite.Suite, hint string) (*ClientConfig, *ServerConfig) {
	ckx := &ciphersuite.ClientConfig{
		Rand:   rand.Reader,
		Time:   time.Now,
		Curves: ciphersuite.DefaultCurves(),
		PSK: func(h []byte) ([]byte, []byte, error) {
			return []byte(testIdentity), testPSK, nil
		},
	}
	skx := &ciphersuite.ServerConfig{
		Rand:   rand.Reader,
		Time:   time.Now,
		Curves: ciphersuite.DefaultCurves(),
		PSK: func(id []byte) ([]byte, error) {
			if string(id) != testIdentity {
				return nil, fmt.Errorf("unknown identity %q", id)
			}
			return testPSK, nil
		},
		Hint: []byte(hint),
	}
	return &ClientConfig{Rand: rand.Reader, Suites: suites, KX: ckx},
		&ServerConfig{Rand: rand.Reader, Suites: suites, KX: skx}
}

type hsResult struct {
	cst, sst   *State
	cerr, serr error
	crl, srl   *memRL
}

// runPair runs Client and Server against each other over an in-memory pipe.
func runPair(t testing.TB, ccfg *ClientConfig, scfg *ServerConfig) hsResult {
	t.Helper()
	return runPairRL(t, ccfg, scfg, nil)
}

func runPairRL(t testing.TB, ccfg *ClientConfig, scfg *ServerConfig, setup func(c, s *memRL)) hsResult {
	t.Helper()
	crl, srl := newMemPipe()
	if setup != nil {
		setup(crl, srl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := hsResult{crl: crl, srl: srl}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.sst, r.serr = Server(ctx, srl, scfg)
		srl.close()
	}()
	r.cst, r.cerr = Client(ctx, crl, ccfg)
	crl.close()
	<-done
	return r
}

// implementations runs f with the fake key exchange and, once the
// ciphersuite package implements them, with the real PSK suites.
func implementations(t *testing.T, f func(t *testing.T)) {
	t.Run("fake", func(t *testing.T) {
		useFakes(t)
		f(t)
	})
	t.Run("real", func(t *testing.T) {
		requireReal(t)
		f(t)
	})
}

// requireReal checks that the real ciphersuite package can run the tests'
// suite (TLS_PSK_WITH_AES_128_GCM_SHA256): a record cipher and the PSK key
// exchange. If either regressed, the test fails: the real half of a test
// must never be silently left out.
func requireReal(t testing.TB) {
	t.Helper()
	s := ciphersuite.ByID(0x00A8)
	if s == nil {
		t.Fatal("ciphersuite 0x00A8 (TLS_PSK_WITH_AES_128_GCM_SHA256) is not registered")
	}
	if _, err := ciphersuite.NewRecordCipher(s, make([]byte, 16), make([]byte, 4)); err != nil {
		t.Fatalf("real record cipher for %s: %v", s.Name, err)
	}
	ccfg, _ := testConfigs(nil, "")
	if !ccfg.KX.Supports(s) {
		t.Fatalf("the real key exchanges do not support %s", s.Name)
	}
}

func wantAlert(t *testing.T, err error, a ciphersuite.Alert) {
	t.Helper()
	got, ok := ciphersuite.AlertOf(err)
	if !ok {
		t.Fatalf("error %v carries no alert, want %s", err, a)
	}
	if got != a {
		t.Fatalf("alert = %s (%v), want %s", got, err, a)
	}
	var ae *ciphersuite.AlertError
	if errors.As(err, &ae) && ae.Remote {
		t.Fatalf("alert %v is marked remote", err)
	}
}

func checkSuccess(t *testing.T, r hsResult) {
	t.Helper()
	if r.cerr != nil || r.serr != nil {
		t.Fatalf("handshake failed: client %v, server %v", r.cerr, r.serr)
	}
	c, s := r.cst, r.sst
	if c.Suite != s.Suite || c.Version != 0x0303 || s.Version != 0x0303 {
		t.Fatalf("suite/version disagree: %v %x / %v %x", c.Suite, c.Version, s.Suite, s.Version)
	}
	if len(c.MasterSecret) != 48 || !bytes.Equal(c.MasterSecret, s.MasterSecret) {
		t.Fatal("master secrets differ")
	}
	if len(c.ClientFinished) != 12 || !bytes.Equal(c.ClientFinished, s.ClientFinished) ||
		!bytes.Equal(c.ServerFinished, s.ServerFinished) || bytes.Equal(c.ClientFinished, c.ServerFinished) {
		t.Fatal("Finished verify_data disagree")
	}
	if c.ClientRandom != s.ClientRandom || c.ServerRandom != s.ServerRandom {
		t.Fatal("randoms differ")
	}
	if c.ExtendedMasterSecret != s.ExtendedMasterSecret || c.SecureRenegotiation != s.SecureRenegotiation {
		t.Fatalf("EMS/renegotiation disagree: %+v / %+v", c, s)
	}
	for _, rl := range []*memRL{r.crl, r.srl} {
		if rl.readCCS != 1 || rl.wroteCCS != 1 || rl.version != 0x0303 {
			t.Fatalf("record layer: read %d CCS, wrote %d, version %#x", rl.readCCS, rl.wroteCCS, rl.version)
		}
	}
	// The handed-over ciphers use the keys an independent derivation from
	// the master secret gives (so nothing was zeroized too early).
	km := keysFromMasterSecret(c.Suite, c.MasterSecret, c.ClientRandom[:], c.ServerRandom[:])
	refClient, err1 := newRecordCipher(c.Suite, km.clientKey, km.clientIV)
	refServer, err2 := newRecordCipher(c.Suite, km.serverKey, km.serverIV)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	for i, p := range []struct{ w, ref ciphersuite.RecordCipher }{{r.crl.writeCipher, refClient}, {r.srl.writeCipher, refServer}} {
		rec := p.w.Seal(nil, 3, 23, 0x0303, []byte("x"))
		if pt, err := p.ref.Open(nil, 3, 23, 0x0303, rec); err != nil || string(pt) != "x" {
			t.Fatalf("direction %d: handed-over cipher does not match the key block: %v", i, err)
		}
	}
	// The record ciphers handed over agree in both directions.
	for i, p := range [][2]*memRL{{r.crl, r.srl}, {r.srl, r.crl}} {
		w, rd := p[0], p[1]
		msg := []byte("application data after the handshake")
		rec := w.writeCipher.Seal(nil, 7, 23, 0x0303, msg)
		pt, err := rd.readCipher.Open(nil, 7, 23, 0x0303, rec)
		if err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("direction %d: record ciphers disagree: %v", i, err)
		}
	}
}

func TestHandshakeAllPSKSuites(t *testing.T) {
	implementations(t, func(t *testing.T) {
		for _, s := range pskSuites() {
			for _, hint := range []string{"", "srvhint"} {
				t.Run(s.Name+"/hint="+hint, func(t *testing.T) {
					ccfg, scfg := testConfigs([]*ciphersuite.Suite{s}, hint)
					var clog, slog bytes.Buffer
					ccfg.KeyLog, scfg.KeyLog = &clog, &slog
					r := runPair(t, ccfg, scfg)
					checkSuccess(t, r)
					if r.cst.Suite != s || !r.cst.ExtendedMasterSecret || !r.cst.SecureRenegotiation {
						t.Fatalf("state %+v", r.cst)
					}
					if r.sst.PeerIdentity != testIdentity || r.cst.LocalIdentity != testIdentity {
						t.Fatalf("identities: server sees %q, client presented %q", r.sst.PeerIdentity, r.cst.LocalIdentity)
					}
					if r.cst.PSKIdentityHint != hint || r.cst.PeerIdentity != "" {
						t.Fatalf("client sees hint %q (peer %q), want %q and no peer identity", r.cst.PSKIdentityHint, r.cst.PeerIdentity, hint)
					}
					want := fmt.Sprintf("CLIENT_RANDOM %x %x\n", r.cst.ClientRandom, r.cst.MasterSecret)
					if clog.String() != want || slog.String() != want {
						t.Fatalf("key log:\n%q\n%q\nwant %q", clog.String(), slog.String(), want)
					}
					// SKE present iff ECDHE or a hint.
					hasSKE := false
					for _, m := range r.srl.sent {
						hasSKE = hasSKE || m[0] == typeServerKeyExchange
					}
					if wantSKE := s.KX == ciphersuite.KXECDHEPSK || hint != ""; hasSKE != wantSKE {
						t.Fatalf("ServerKeyExchange sent = %v, want %v", hasSKE, wantSKE)
					}
				})
			}
		}
	})
}

func TestServerPreferenceOrder(t *testing.T) {
	implementations(t, func(t *testing.T) {
		ccfg, scfg := testConfigs(pskSuites(), "")
		scfg.Suites = []*ciphersuite.Suite{ciphersuite.ByID(0x00A9), ciphersuite.ByID(0xCCAC)}
		r := runPair(t, ccfg, scfg)
		checkSuccess(t, r)
		if r.cst.Suite.ID != 0x00A9 {
			t.Fatalf("negotiated %v, want the server's first choice", r.cst.Suite)
		}
	})
}

func TestNoCommonSuite(t *testing.T) {
	implementations(t, func(t *testing.T) {
		ccfg, scfg := testConfigs([]*ciphersuite.Suite{ciphersuite.ByID(0x00A8)}, "")
		scfg.Suites = []*ciphersuite.Suite{ciphersuite.ByID(0x00A9)}
		r := runPair(t, ccfg, scfg)
		wantAlert(t, r.serr, ciphersuite.AlertHandshakeFailure)
		if r.cerr == nil {
			t.Fatal("client succeeded")
		}
	})
}

func TestWrongPSK(t *testing.T) {
	implementations(t, func(t *testing.T) {
		ccfg, scfg := testConfigs(pskSuites()[:1], "")
		ccfg.KX.PSK = func([]byte) ([]byte, []byte, error) {
			return []byte(testIdentity), bytes.Repeat([]byte{7}, 16), nil
		}
		// Handshake-level check: with record protection bypassed, the
		// server's check of the client's Finished fails with decrypt_error.
		r := runPairRL(t, ccfg, scfg, func(c, s *memRL) { c.plaintext, s.plaintext = true, true })
		wantAlert(t, r.serr, ciphersuite.AlertDecryptError)
		// Over protected records the encrypted Finished does not even
		// decrypt: the record layer reports bad_record_mac first.
		r = runPair(t, ccfg, scfg)
		wantAlert(t, r.serr, ciphersuite.AlertBadRecordMAC)
	})
}

func TestUnknownPSKIdentity(t *testing.T) {
	implementations(t, func(t *testing.T) {
		ccfg, scfg := testConfigs(pskSuites(), "")
		ccfg.KX.PSK = func([]byte) ([]byte, []byte, error) { return []byte("mallory"), testPSK, nil }
		r := runPair(t, ccfg, scfg)
		wantAlert(t, r.serr, ciphersuite.AlertUnknownPSKIdentity)
	})
}

// TestTamperedFinished flips a bit of the client's verify_data (under a
// consistent record protection): decrypt_error.
func TestTamperedFinished(t *testing.T) {
	implementations(t, func(t *testing.T) {
		ccfg, scfg := testConfigs(pskSuites(), "")
		r := runPairRL(t, ccfg, scfg, func(c, s *memRL) {
			c.onWrite = func(msg []byte) [][]byte {
				if msg[0] == typeFinished {
					msg = append([]byte(nil), msg...)
					msg[5] ^= 1
				}
				return [][]byte{msg}
			}
		})
		wantAlert(t, r.serr, ciphersuite.AlertDecryptError)

		r = runPairRL(t, ccfg, scfg, func(c, s *memRL) {
			s.onWrite = func(msg []byte) [][]byte {
				if msg[0] == typeFinished {
					msg = append([]byte(nil), msg...)
					msg[15] ^= 0x80
				}
				return [][]byte{msg}
			}
		})
		if r.serr != nil {
			t.Fatal(r.serr)
		}
		wantAlert(t, r.cerr, ciphersuite.AlertDecryptError)
	})
}

func withClientHello(t *testing.T, f func(*clientHelloMsg)) {
	testHookClientHello = f
	t.Cleanup(func() { testHookClientHello = nil })
}

func withServerHello(t *testing.T, f func(*serverHelloMsg)) {
	testHookServerHello = f
	t.Cleanup(func() { testHookServerHello = nil })
}

func TestExtendedMasterSecret(t *testing.T) {
	implementations(t, func(t *testing.T) {
		suites := pskSuites()
		t.Run("client omits, server requires", func(t *testing.T) {
			withClientHello(t, func(m *clientHelloMsg) { m.ems = false })
			ccfg, scfg := testConfigs(suites, "")
			r := runPair(t, ccfg, scfg)
			wantAlert(t, r.serr, ciphersuite.AlertHandshakeFailure)
		})
		t.Run("client omits, both allow", func(t *testing.T) {
			withClientHello(t, func(m *clientHelloMsg) { m.ems = false })
			ccfg, scfg := testConfigs(suites, "")
			ccfg.InsecureAllowNoEMS, scfg.InsecureAllowNoEMS = true, true
			r := runPair(t, ccfg, scfg)
			checkSuccess(t, r)
			if r.cst.ExtendedMasterSecret || r.sst.ExtendedMasterSecret {
				t.Fatal("EMS reported without the extension")
			}
		})
		t.Run("server omits, client requires", func(t *testing.T) {
			withServerHello(t, func(m *serverHelloMsg) { m.ems = false })
			ccfg, scfg := testConfigs(suites, "")
			r := runPair(t, ccfg, scfg)
			wantAlert(t, r.cerr, ciphersuite.AlertHandshakeFailure)
		})
	})
}

// Milagro suites require EMS whatever InsecureAllowNoEMS says (fake key
// exchange standing in for the Milagro ones).
func TestMilagroRequiresEMS(t *testing.T) {
	useFakes(t)
	fakeAllKinds = true
	milagro := append(ciphersuite.ByKX(ciphersuite.KXMilagroCS), ciphersuite.ByKX(ciphersuite.KXMilagroP2P)...)
	t.Run("with EMS", func(t *testing.T) {
		ccfg, scfg := testConfigs(milagro, "")
		r := runPair(t, ccfg, scfg)
		checkSuccess(t, r)
		if r.cst.Suite != milagro[0] || !r.cst.ExtendedMasterSecret {
			t.Fatalf("state %+v", r.cst)
		}
	})
	t.Run("client omits", func(t *testing.T) {
		withClientHello(t, func(m *clientHelloMsg) { m.ems = false })
		ccfg, scfg := testConfigs(milagro, "")
		ccfg.InsecureAllowNoEMS, scfg.InsecureAllowNoEMS = true, true
		r := runPair(t, ccfg, scfg)
		wantAlert(t, r.serr, ciphersuite.AlertHandshakeFailure)
		if !strings.Contains(r.serr.Error(), "extended_master_secret") {
			t.Fatalf("error does not say why: %v", r.serr)
		}
	})
	t.Run("client omits, PSK fallback", func(t *testing.T) {
		withClientHello(t, func(m *clientHelloMsg) { m.ems = false })
		ccfg, scfg := testConfigs(append(milagro, ciphersuite.ByID(0x00A8)), "")
		ccfg.InsecureAllowNoEMS, scfg.InsecureAllowNoEMS = true, true
		r := runPair(t, ccfg, scfg)
		checkSuccess(t, r)
		if r.cst.Suite.ID != 0x00A8 || r.cst.ExtendedMasterSecret {
			t.Fatalf("state %+v", r.cst)
		}
	})
	t.Run("server omits", func(t *testing.T) {
		withServerHello(t, func(m *serverHelloMsg) { m.ems = false })
		ccfg, scfg := testConfigs(milagro, "")
		ccfg.InsecureAllowNoEMS, scfg.InsecureAllowNoEMS = true, true
		r := runPair(t, ccfg, scfg)
		wantAlert(t, r.cerr, ciphersuite.AlertHandshakeFailure)
	})
}

// The key exchange's Rand and Time default from the handshake's when unset,
// without modifying the caller's configuration.
func TestKXDefaults(t *testing.T) {
	implementations(t, func(t *testing.T) {
		ccfg, scfg := testConfigs(pskSuites(), "")
		ccfg.KX.Rand, ccfg.KX.Time, scfg.KX.Rand, scfg.KX.Time = nil, nil, nil, nil
		checkSuccess(t, runPair(t, ccfg, scfg))
		if ccfg.KX.Rand != nil || scfg.KX.Time != nil {
			t.Fatal("caller's configuration modified")
		}
	})
}

func TestBadConfig(t *testing.T) {
	c, s := newMemPipe()
	if _, err := Client(context.Background(), c, &ClientConfig{}); err == nil {
		t.Fatal("empty client config accepted")
	}
	if _, err := Server(context.Background(), s, nil); err == nil {
		t.Fatal("nil server config accepted")
	}
	ccfg, _ := testConfigs(nil, "")
	wantAlert(t, func() error { _, err := Client(context.Background(), c, ccfg); return err }(), ciphersuite.AlertHandshakeFailure)
}
