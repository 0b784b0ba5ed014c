package mtls_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// End-to-end tests of the post-quantum hybrid (docs/protocol.md §5b) over
// TCP: the policy matrix, every alert the extension can cause, tampering
// in flight, and resumption.

var milagroSuites = []uint16{0xFF01, 0xFF02, 0xFF03, 0xFF11, 0xFF12, 0xFF13}

// pqConfigs returns client and server configurations for one Milagro suite
// with the given policies.
func pqConfigs(t *testing.T, suite uint16, cp, sp mtls.PostQuantumPolicy) (c, s *mtls.Config) {
	t.Helper()
	if suite&0xF0 == 0x10 {
		c, s = milP2PConfigs(t, suite)
	} else {
		c, s = milCSConfigs(t, suite)
	}
	c.PostQuantum, s.PostQuantum = cp, sp
	return c, s
}

func pqOK(t *testing.T, r milResult, want bool) {
	t.Helper()
	if r.clientErr != nil || r.serverErr != nil {
		t.Fatalf("handshake failed: client %v, server %v", r.clientErr, r.serverErr)
	}
	if c, s := r.client.ConnectionState().PostQuantum, r.server.ConnectionState().PostQuantum; c != want || s != want {
		t.Fatalf("PostQuantum: client %v, server %v, want %v", c, s, want)
	}
	go r.server.Write([]byte("ping"))
	buf := make([]byte, 4)
	r.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := readFull(r.client, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("data after the handshake: %v", err)
	}
}

// TestPQMatrix: prefer/prefer is hybrid on every Milagro suite (CS and P2P,
// all three AEADs); prefer with a peer without the extension is classic in
// both directions; require against off fails with insufficient_security
// from the requiring side — on a server before any pairing.
func TestPQMatrix(t *testing.T) {
	P, O, R := mtls.PostQuantumPrefer, mtls.PostQuantumOff, mtls.PostQuantumRequire
	for _, suite := range milagroSuites {
		name := ciphersuite.ByID(suite).Name
		t.Run(name, func(t *testing.T) {
			c, s := pqConfigs(t, suite, P, P)
			pqOK(t, milHandshakeTCP(t, c, s, nil, nil), true)
			c, s = pqConfigs(t, suite, R, R)
			pqOK(t, milHandshakeTCP(t, c, s, nil, nil), true)
			c, s = pqConfigs(t, suite, P, O)
			pqOK(t, milHandshakeTCP(t, c, s, nil, nil), false)
			c, s = pqConfigs(t, suite, O, P)
			pqOK(t, milHandshakeTCP(t, c, s, nil, nil), false)

			c, s = pqConfigs(t, suite, R, O)
			r := milHandshakeTCP(t, c, s, nil, nil)
			milExpectAlert(t, "client", r.clientErr, ciphersuite.AlertInsufficientSecurity, false)
			milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertInsufficientSecurity, true)

			c, s = pqConfigs(t, suite, O, R)
			gate := &countingGate{}
			s.PairingGate = gate
			r = milHandshakeTCP(t, c, s, nil, nil)
			milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertInsufficientSecurity, false)
			milExpectAlert(t, "client", r.clientErr, ciphersuite.AlertInsufficientSecurity, true)
			if gate.n.Load() != 0 {
				t.Fatal("the requiring server did pairing work before refusing")
			}
		})
	}
}

// TestPQNeverWithPSK: PSK suites never carry milagro_pq and are never
// hybrid; a requiring server refuses a PSK-only client with
// insufficient_security, and a requiring client offers no PSK suite.
func TestPQNeverWithPSK(t *testing.T) {
	c, s := pskConfigs(0x00A8)
	var sawPQ bool
	spy := milTamper(func(typ uint8, body []byte) []byte {
		if typ == 1 {
			milEditExtension(body, ciphersuite.ExtMilagroPQ, func(d []byte) ([]byte, bool) { sawPQ = true; return d, true })
		}
		return body
	})
	pqOK(t, milHandshakeTCP(t, c, s, spy, nil), false)
	if sawPQ {
		t.Fatal("a PSK-only ClientHello carried milagro_pq")
	}
	// A requiring server (with Milagro credentials too) refuses a client
	// that offers only PSK suites.
	s.PostQuantum = mtls.PostQuantumRequire
	s.CSServerSecret, s.CipherSuites = milFixtureFor(t).secret, []uint16{0x00A8, 0xFF01}
	r := milHandshakeTCP(t, c, s, nil, nil)
	milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertInsufficientSecurity, false)
	c.PostQuantum, s.PostQuantum = mtls.PostQuantumRequire, mtls.PostQuantumPrefer
	if err := mtls.Client(nopConn{}, c).Handshake(); err == nil || !strings.Contains(err.Error(), "no Milagro credentials") {
		t.Fatalf("a requiring client with only PSK credentials: %v", err)
	}
	c.PostQuantum = 7
	if err := mtls.Client(nopConn{}, c).Handshake(); err == nil || !strings.Contains(err.Error(), "unknown Config.PostQuantum") {
		t.Fatalf("PostQuantum 7: %v", err)
	}
	c.PostQuantum = mtls.PostQuantumPrefer
	// A client offering CS and PSK to a PSK-only server: milagro_pq goes in
	// the ClientHello, the server picks PSK and does not echo it.
	f := milFixtureFor(t)
	c, s = pskConfigs(0x00A8, 0xFF01)
	c.CSKey, c.Time, s.Time = f.alice, milClock(milNow), milClock(milNow)
	sawPQ = false
	pqOK(t, milHandshakeTCP(t, c, s, spy, nil), false)
	if !sawPQ {
		t.Fatal("a ClientHello offering a Milagro suite carried no milagro_pq")
	}
}

// milEditServerHello rewrites extension ext of a ServerHello body (edit as
// for milEditExtension), or appends it when add is set and it is absent.
func milEditServerHello(body []byte, ext uint16, add []byte, edit func([]byte) ([]byte, bool)) []byte {
	p := 2 + 32
	p += 1 + int(body[p]) + 2 + 1
	head := append([]byte(nil), body[:p]...)
	var exts []byte
	if len(body) > p+2 {
		exts = body[p+2:]
	}
	var ne []byte
	found := false
	for len(exts) >= 4 {
		typ := binary.BigEndian.Uint16(exts)
		n := int(binary.BigEndian.Uint16(exts[2:]))
		data := exts[4 : 4+n]
		exts = exts[4+n:]
		if typ == ext {
			found = true
			var keep bool
			if data, keep = edit(append([]byte(nil), data...)); !keep {
				continue
			}
		}
		ne = binary.BigEndian.AppendUint16(ne, typ)
		ne = binary.BigEndian.AppendUint16(ne, uint16(len(data)))
		ne = append(ne, data...)
	}
	if !found && add != nil {
		ne = binary.BigEndian.AppendUint16(ne, ext)
		ne = binary.BigEndian.AppendUint16(ne, uint16(len(add)))
		ne = append(ne, add...)
	}
	head = binary.BigEndian.AppendUint16(head, uint16(len(ne)))
	return append(head, ne...)
}

func pqVector(n int) []byte {
	v := make([]byte, 2+n)
	binary.BigEndian.PutUint16(v, uint16(n))
	return v
}

// TestPQTampering: every way a man in the middle or a broken peer can
// mangle milagro_pq, and the alert each gets.
func TestPQTampering(t *testing.T) {
	P, O := mtls.PostQuantumPrefer, mtls.PostQuantumOff
	onClientHello := func(edit func([]byte) ([]byte, bool)) func(typ uint8, body []byte) []byte {
		return func(typ uint8, body []byte) []byte {
			if typ == 1 {
				return milEditExtension(body, ciphersuite.ExtMilagroPQ, edit)
			}
			return body
		}
	}
	onServerHello := func(add []byte, edit func([]byte) ([]byte, bool)) func(typ uint8, body []byte) []byte {
		return func(typ uint8, body []byte) []byte {
			if typ == 2 {
				return milEditServerHello(body, ciphersuite.ExtMilagroPQ, add, edit)
			}
			return body
		}
	}
	trim := func(d []byte) ([]byte, bool) {
		v := pqVector(len(d) - 3)
		copy(v[2:], d[2:])
		return v, true
	}
	modulus := func(d []byte) ([]byte, bool) { // first coefficient = q = 3329
		d[2], d[3] = 0x01, d[3]&0xf0|0x0d
		return d, true
	}
	flip := func(d []byte) ([]byte, bool) { d[500] ^= 1; return d, true }
	strip := func(d []byte) ([]byte, bool) { return nil, false }
	for _, suite := range []uint16{0xFF01, 0xFF13} {
		for _, tc := range []struct {
			name           string
			cp, sp         mtls.PostQuantumPolicy
			client, server func(typ uint8, body []byte) []byte // rewrite what that side writes
			side           string                              // which side sends the alert
			want           ciphersuite.Alert
		}{
			{"ServerHello milagro_pq not asked for", O, P, nil, onServerHello(pqVector(1088), nil), "client", ciphersuite.AlertUnsupportedExtension},
			{"short ciphertext", P, P, nil, onServerHello(nil, trim), "client", ciphersuite.AlertDecodeError},
			{"short encapsulation key", P, P, onClientHello(trim), nil, "server", ciphersuite.AlertDecodeError},
			{"encapsulation key fails the modulus check", P, P, onClientHello(modulus), nil, "server", ciphersuite.AlertIllegalParameter},
			{"flipped ciphertext byte", P, P, nil, onServerHello(nil, flip), "server", ciphersuite.AlertBadRecordMAC},
			{"extension stripped from the ClientHello", P, P, onClientHello(strip), nil, "server", ciphersuite.AlertBadRecordMAC},
		} {
			t.Run(ciphersuite.ByID(suite).Name+"/"+tc.name, func(t *testing.T) {
				c, s := pqConfigs(t, suite, tc.cp, tc.sp)
				var wrapC, wrapS func(net.Conn) net.Conn
				if tc.client != nil {
					wrapC = milTamper(tc.client)
				}
				if tc.server != nil {
					wrapS = milTamper(tc.server)
				}
				r := milHandshakeTCP(t, c, s, wrapC, wrapS)
				if tc.side == "client" {
					milExpectAlert(t, "client", r.clientErr, tc.want, false)
				} else {
					milExpectAlert(t, "server", r.serverErr, tc.want, false)
				}
			})
		}
	}

	// milagro_pq in a ServerHello beside a PSK suite: the client offered it
	// (beside its CS suite) but the server chose PSK.
	f := milFixtureFor(t)
	c, s := pskConfigs(0x00A8, 0xFF01)
	c.CSKey, c.Time, s.Time = f.alice, milClock(milNow), milClock(milNow)
	r := milHandshakeTCP(t, c, s, nil, milTamper(onServerHello(pqVector(1088), nil)))
	milExpectAlert(t, "client", r.clientErr, ciphersuite.AlertUnsupportedExtension, false)
}

// TestPQResumption: a ticket records whether its session was hybrid; a
// resumed hybrid session stays hybrid; a requiring server does not resume
// a classic session, and a requiring client does not offer one.
func TestPQResumption(t *testing.T) {
	f := milFixtureFor(t)
	keys := [][32]byte{{1, 2, 3}}
	server := &mtls.Config{CSServerSecret: f.secret, Time: milClock(milNow), TicketKeys: func() [][32]byte { return keys }}
	client := &mtls.Config{CSKey: f.alice, Time: milClock(milNow), ClientSessionCache: mtls.NewLRUClientSessionCache(4)}

	// Hybrid, then resumed: still hybrid.
	pqOK(t, mustResume(t, client, server, false), true)
	pqOK(t, mustResume(t, client, server, true), true)

	// A classic session (the server had the hybrid off) ...
	client.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
	off := server.Clone()
	off.PostQuantum = mtls.PostQuantumOff
	pqOK(t, mustResume(t, client, off, false), false)
	pqOK(t, mustResume(t, client, off, true), false)
	// ... is not resumed by a requiring server: a full, hybrid handshake.
	req := server.Clone()
	req.PostQuantum = mtls.PostQuantumRequire
	pqOK(t, mustResume(t, client, req, false), true)

	// ... and not offered by a requiring client.
	client.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
	pqOK(t, mustResume(t, client, off, false), false)
	reqClient := client.Clone()
	reqClient.PostQuantum = mtls.PostQuantumRequire
	var offered bool
	spy := milTamper(func(typ uint8, body []byte) []byte {
		if typ == 1 {
			milEditExtension(body, 35, func(d []byte) ([]byte, bool) { offered = len(d) > 0; return d, true })
		}
		return body
	})
	pqOK(t, milHandshakeTCP(t, reqClient, server, spy, nil), true)
	if offered {
		t.Fatal("a requiring client offered a classic session's ticket")
	}
}

// TestLookAlikeIdentitiesOnTheWire: identities that are not NFC, hold a
// format character or start or end with white space are illegal_parameter
// in a milagro_cs hello (spec §2, revision 3); a Cyrillic look-alike that
// breaks none of these rules is a different, valid identity.
func TestLookAlikeIdentitiesOnTheWire(t *testing.T) {
	for _, bad := range []string{"alic" + "e\u0301" + "@example.com", "ali\u200bce@example.com", "alice\u202e@example.com",
		"\ufeffalice@example.com", " alice@example.com", "alice@example.com "} {
		c, s := milCSConfigs(t, 0xFF01)
		rewrite := milTamper(func(typ uint8, body []byte) []byte {
			if typ != 1 {
				return body
			}
			return milEditExtension(body, 0xFF4D, func(d []byte) ([]byte, bool) {
				n := int(binary.BigEndian.Uint16(d))
				out := binary.BigEndian.AppendUint16(nil, uint16(len(bad)))
				out = append(out, bad...)
				return append(out, d[2+n:]...), true
			})
		})
		r := milHandshakeTCP(t, c, s, rewrite, nil)
		milExpectAlert(t, "server "+bad, r.serverErr, ciphersuite.AlertIllegalParameter, false)

		// The same identity as id_C in a P2P ClientKeyExchange.
		c, s = milP2PConfigs(t, 0xFF11)
		rewrite = milTamper(func(typ uint8, body []byte) []byte {
			if typ != 16 {
				return body
			}
			n := int(binary.BigEndian.Uint16(body))
			out := binary.BigEndian.AppendUint16(nil, uint16(len(bad)))
			out = append(out, bad...)
			return append(out, body[2+n:]...)
		})
		r = milHandshakeTCP(t, c, s, rewrite, nil)
		milExpectAlert(t, "P2P server "+bad, r.serverErr, ciphersuite.AlertIllegalParameter, false)
	}

	f := milFixtureFor(t)
	const lookAlike = "\u0430lice@example.com" // Cyrillic а
	var shares []*pairing.CSClientKey
	for _, m := range f.shares {
		k, err := m.IssueCSClientKey(lookAlike)
		if err != nil {
			t.Fatalf("issuing %q: %v", lookAlike, err)
		}
		shares = append(shares, k)
	}
	key, err := pairing.CombineCSClientKeys(shares...)
	if err != nil {
		t.Fatal(err)
	}
	c, s := milCSConfigs(t, 0xFF01)
	c.CSKey = key
	r := milHandshakeTCP(t, c, s, nil, nil)
	pqOK(t, r, true)
	if id := r.server.ConnectionState().PeerIdentity; id != lookAlike || bytes.Equal([]byte(id), []byte(milAlice)) {
		t.Fatalf("peer identity %q", id)
	}
}
