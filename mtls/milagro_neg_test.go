package mtls_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// Negative tests: each ends with the alert of docs/protocol.md §5.1 on both sides — the
// side that detects the problem sends it (Remote false), the other receives
// it (Remote true) — and an error a person can act on.

// milFail runs a handshake that must fail with alert a, detected by
// detector ("server" or "client"); wantMsg, if set, must appear in the
// detecting side's error.
func milFail(t *testing.T, ccfg, scfg *mtls.Config, wc, ws func(net.Conn) net.Conn, detector string, a ciphersuite.Alert, wantMsg string) {
	t.Helper()
	r := milHandshakeTCP(t, ccfg, scfg, wc, ws)
	if r.clientErr == nil || r.serverErr == nil {
		t.Fatalf("handshake succeeded: client %v, server %v", r.clientErr, r.serverErr)
	}
	local, remote := r.serverErr, r.clientErr
	if detector == "client" {
		local, remote = r.clientErr, r.serverErr
	}
	milExpectAlert(t, detector, local, a, false)
	other := "client"
	if detector == "client" {
		other = "server"
	}
	milExpectAlert(t, other, remote, a, true)
	if wantMsg != "" && !strings.Contains(local.Error(), wantMsg) {
		t.Fatalf("%s error %q does not mention %q", detector, local, wantMsg)
	}
	t.Logf("%s: %v | %s: %v", detector, local, other, remote)
}

// milForgedKey is bob's key relabelled as alice's.
func milForgedKey(t testing.TB, f *milFixture) *pairing.CSClientKey {
	return milRelabel(t, f, milAlice)
}

// milRelabel is bob's key relabelled as id's.
func milRelabel(t testing.TB, f *milFixture, id string) *pairing.CSClientKey {
	b, err := f.bob.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	point := b[len(b)-pairing.G1Size:]
	origin := b[2 : 4+8*int(b[3])] // flags, count, fingerprints
	enc := append([]byte{b[0], b[1]}, origin...)
	enc = append(enc, 0, byte(len(id)))
	enc = append(enc, id...)
	enc = append(enc, point...)
	k := new(pairing.CSClientKey)
	if err := k.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if k.ID() != id {
		t.Fatal(k.ID())
	}
	return k
}

func TestMilagroCSRefusals(t *testing.T) {
	f := milFixtureFor(t)
	base := func() (*mtls.Config, *mtls.Config) { return milCSConfigs(t, 0xFF01) }
	cases := []struct {
		name  string
		setup func(c, s *mtls.Config)
		msg   string
	}{
		{"wrong key (bob's key under alice's id)", func(c, s *mtls.Config) { c.CSKey = milForgedKey(t, f) }, "does not verify"},
		{"key from 2 of 3 shares", func(c, s *mtls.Config) { c.CSKey = f.alice2of3 }, "does not verify"},
		{"wrong PIN", func(c, s *mtls.Config) {
			c.CSKey, c.CSToken = nil, f.aliceToken
			c.GetPIN = func() (uint32, error) { return milBadPIN, nil }
		}, "does not verify"},
		{"missing permit", func(c, s *mtls.Config) { s.RequirePermits = true }, "no time permit"},
		{"permit not used by server", func(c, s *mtls.Config) { c.CSPermit = f.permitToday }, "does not use permits"},
		{"expired permit", func(c, s *mtls.Config) {
			c.GetCSPermit = func(uint64) (*pairing.TimePermit, error) { return f.permitYday, nil }
			s.RequirePermits = true
		}, "not valid now"},
		{"permit of another identity", func(c, s *mtls.Config) {
			c.CSKey, c.CSPermit = f.bob, nil
			s.RequirePermits = true
		}, "no time permit"},
		{"client clock 31s ahead", func(c, s *mtls.Config) { c.Time = milClock(milNow.Add(31 * time.Second)) }, "ahead"},
		{"client clock 31s behind", func(c, s *mtls.Config) { c.Time = milClock(milNow.Add(-31 * time.Second)) }, "behind"},
		{"client clock 6s off, skew 5s", func(c, s *mtls.Config) {
			c.Time = milClock(milNow.Add(6 * time.Second))
			s.ClockSkew = 5 * time.Second
		}, "allowed"},
		{"identity denied", func(c, s *mtls.Config) {
			s.VerifyPeerIdentity = func(id string) error {
				if id == milAlice {
					return errors.New("alice is suspended")
				}
				return nil
			}
		}, "alice is suspended"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, s := base()
			tc.setup(c, s)
			milFail(t, c, s, nil, nil, "server", ciphersuite.AlertAccessDenied, tc.msg)
		})
	}
}

func TestMilagroCSAccepted(t *testing.T) {
	f := milFixtureFor(t)
	midnight := time.Unix(int64(pairing.Day(milNow))*86400, 0)
	cases := []struct {
		name  string
		setup func(c, s *mtls.Config)
	}{
		{"client clock 29s ahead", func(c, s *mtls.Config) { c.Time = milClock(milNow.Add(29 * time.Second)) }},
		{"client clock 30s behind", func(c, s *mtls.Config) { c.Time = milClock(milNow.Add(-30 * time.Second)) }},
		{"yesterday's permit within skew of midnight", func(c, s *mtls.Config) {
			c.CSPermit, s.RequirePermits = f.permitYday, true
			c.Time = milClock(midnight.Add(-5 * time.Second))
			s.Time = milClock(midnight.Add(10 * time.Second))
		}},
		{"bob, allowed", func(c, s *mtls.Config) {
			c.CSKey = f.bob
			s.VerifyPeerIdentity = func(id string) error {
				if id != milBob {
					return errors.New("not bob")
				}
				return nil
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, s := milCSConfigs(t, 0xFF03)
			tc.setup(c, s)
			r := milHandshakeTCP(t, c, s, nil, nil)
			if r.clientErr != nil || r.serverErr != nil {
				t.Fatalf("client %v, server %v", r.clientErr, r.serverErr)
			}
			exchange(t, r.client, r.server, 100)
		})
	}
}

// milValidG1 / milValidG2 are valid group elements nobody's keys relate to.
func milValidG1() []byte { return pairing.EncodeG1(pairing.H1(pairing.DomainCS, []byte("tamper"))) }
func milValidG2() []byte { return pairing.EncodeG2(pairing.H2(pairing.DomainP2P, []byte("tamper"))) }

// milIdentityG1 is the encoding of the point at infinity.
func milIdentityG1() []byte {
	b := make([]byte, pairing.G1Size)
	b[0] = 0xc0
	return b
}

func TestMilagroCSExtensionMalformed(t *testing.T) {
	ext := ciphersuite.ExtMilagroCS
	editExt := func(edit func(d []byte) ([]byte, bool)) func(net.Conn) net.Conn {
		return milTamper(func(typ uint8, body []byte) []byte {
			if typ != milClientHello {
				return body
			}
			return milEditExtension(body, ext, edit)
		})
	}
	// Offsets in the extension: identity<2+len>, day 8, time 8, U 48, V 48.
	uOff := 2 + len(milAlice) + 16
	vOff := uOff + pairing.G1Size
	cases := []struct {
		name string
		edit func(d []byte) ([]byte, bool)
		a    ciphersuite.Alert
		msg  string
	}{
		{"missing", func(d []byte) ([]byte, bool) { return nil, false }, ciphersuite.AlertHandshakeFailure, "no cipher suite in common"},
		{"truncated", func(d []byte) ([]byte, bool) { return d[:len(d)-1], true }, ciphersuite.AlertDecodeError, "truncated"},
		{"trailing byte", func(d []byte) ([]byte, bool) { return append(d, 0), true }, ciphersuite.AlertDecodeError, "trailing"},
		{"empty", func(d []byte) ([]byte, bool) { return []byte{}, true }, ciphersuite.AlertDecodeError, ""},
		{"identity length 0", func(d []byte) ([]byte, bool) {
			return append([]byte{0, 0}, d[2+len(milAlice):]...), true
		}, ciphersuite.AlertDecodeError, "must be 1..1024"},
		{"identity length past the end", func(d []byte) ([]byte, bool) { d[0], d[1] = 0x03, 0xff; return d, true }, ciphersuite.AlertDecodeError, ""},
		{"identity not UTF-8", func(d []byte) ([]byte, bool) { d[2] = 0xff; return d, true }, ciphersuite.AlertIllegalParameter, "UTF-8"},
		{"U is the identity point", func(d []byte) ([]byte, bool) { copy(d[uOff:], milIdentityG1()); return d, true }, ciphersuite.AlertIllegalParameter, "identity element"},
		{"V not a point", func(d []byte) ([]byte, bool) { d[vOff+47] ^= 1; return d, true }, ciphersuite.AlertIllegalParameter, ""},
		{"V replaced by a valid point", func(d []byte) ([]byte, bool) { copy(d[vOff:], milValidG1()); return d, true }, ciphersuite.AlertAccessDenied, "does not verify"},
		{"identity changed to bob", func(d []byte) ([]byte, bool) {
			out := append([]byte{0, byte(len(milBob))}, milBob...)
			return append(out, d[2+len(milAlice):]...), true
		}, ciphersuite.AlertAccessDenied, "does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, s := milCSConfigs(t, 0xFF01)
			milFail(t, c, s, editExt(tc.edit), nil, "server", tc.a, tc.msg)
		})
	}
}

// editBody returns a tamper that rewrites the body of message type typ.
func editBody(typ uint8, edit func(b []byte) []byte) func(net.Conn) net.Conn {
	return milTamper(func(t uint8, body []byte) []byte {
		if t != typ {
			return body
		}
		return edit(body)
	})
}

func TestMilagroKeyExchangeTampered(t *testing.T) {
	finished := ciphersuite.AlertBadRecordMAC // the Finished record cannot be opened with diverging keys
	flip := func(off int) func(b []byte) []byte {
		return func(b []byte) []byte { b[off] ^= 1; return b }
	}
	put := func(off int, v []byte) func(b []byte) []byte {
		return func(b []byte) []byte { copy(b[off:], v); return b }
	}
	trailing := func(b []byte) []byte { return append(b, 0) }
	short := func(b []byte) []byte { return b[:len(b)-1] }
	idLen := func(id string) int { return 2 + len(id) }
	type tc struct {
		name     string
		p2p      bool
		server   bool // tamper the server's ServerKeyExchange (else the client's ClientKeyExchange)
		edit     func(b []byte) []byte
		detector string
		a        ciphersuite.Alert
	}
	cases := []tc{
		{"CS W valid but wrong", false, true, put(0, milValidG1()), "server", finished},
		{"CS W invalid", false, true, flip(47), "client", ciphersuite.AlertIllegalParameter},
		{"CS W identity", false, true, put(0, milIdentityG1()), "client", ciphersuite.AlertIllegalParameter},
		{"CS SKE trailing byte", false, true, trailing, "client", ciphersuite.AlertDecodeError},
		{"CS SKE short", false, true, short, "client", ciphersuite.AlertDecodeError},
		{"CS R valid but wrong", false, false, put(0, milValidG1()), "server", finished},
		{"CS R invalid", false, false, flip(47), "server", ciphersuite.AlertIllegalParameter},
		{"CS CKE trailing byte", false, false, trailing, "server", ciphersuite.AlertDecodeError},
		{"P2P X_S valid but wrong", true, true, put(idLen(milNodeA), milValidG1()), "server", finished},
		{"P2P X_S invalid", true, true, flip(idLen(milNodeA) + 47), "client", ciphersuite.AlertIllegalParameter},
		{"P2P SKE trailing byte", true, true, trailing, "client", ciphersuite.AlertDecodeError},
		{"P2P SKE identity swapped", true, true, func(b []byte) []byte { b[len(b)-pairing.G1Size-1] ^= 1; return b }, "client", ciphersuite.AlertAccessDenied},
		{"P2P W_C valid but wrong", true, false, put(idLen(milNodeB), milValidG1()), "server", finished},
		{"P2P Y_C valid but wrong", true, false, put(idLen(milNodeB)+pairing.G1Size, milValidG2()), "server", finished},
		{"P2P W_C invalid", true, false, flip(idLen(milNodeB) + 47), "server", ciphersuite.AlertIllegalParameter},
		{"P2P Y_C identity", true, false, func(b []byte) []byte {
			y := make([]byte, pairing.G2Size)
			y[0] = 0xc0
			return put(idLen(milNodeB)+pairing.G1Size, y)(b)
		}, "server", ciphersuite.AlertIllegalParameter},
		{"P2P CKE trailing byte", true, false, trailing, "server", ciphersuite.AlertDecodeError},
		{"P2P CKE short", true, false, short, "server", ciphersuite.AlertDecodeError},
		{"P2P CKE identity swapped to node-c", true, false, func(b []byte) []byte { b[idLen(milNodeB)-1] = 'c'; return b }, "server", finished},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ccfg, scfg *mtls.Config
			if c.p2p {
				ccfg, scfg = milP2PConfigs(t, 0xFF12)
			} else {
				ccfg, scfg = milCSConfigs(t, 0xFF02)
			}
			var wc, ws func(net.Conn) net.Conn
			if c.server {
				ws = editBody(milServerKeyExchange, c.edit)
			} else {
				wc = editBody(milClientKeyExchange, c.edit)
			}
			msg := ""
			if c.a == finished {
				msg = "derived different keys"
			}
			milFail(t, ccfg, scfg, wc, ws, c.detector, c.a, msg)
		})
	}
}

func TestMilagroP2PRefusals(t *testing.T) {
	f := milFixtureFor(t)
	t.Run("unexpected server identity", func(t *testing.T) {
		c, s := milP2PConfigs(t, 0xFF11)
		s.P2PKey = f.nodeC
		milFail(t, c, s, nil, nil, "client", ciphersuite.AlertAccessDenied, "is expected")
	})
	t.Run("client identity denied", func(t *testing.T) {
		c, s := milP2PConfigs(t, 0xFF13)
		s.VerifyPeerIdentity = func(id string) error { return errors.New("node-b is not on the allow list") }
		milFail(t, c, s, nil, nil, "server", ciphersuite.AlertAccessDenied, "allow list")
	})
	t.Run("client key from 2 of 3 shares", func(t *testing.T) {
		// P2P authenticates implicitly: the keys disagree, so the client's
		// Finished cannot be opened by the server.
		c, s := milP2PConfigs(t, 0xFF11)
		c.P2PKey = f.nodeB2of3
		milFail(t, c, s, nil, nil, "server", ciphersuite.AlertBadRecordMAC, "derived different keys")
	})
	t.Run("server key from 2 of 3 shares", func(t *testing.T) {
		c, s := milP2PConfigs(t, 0xFF11)
		s.P2PKey = f.nodeA2of3
		milFail(t, c, s, nil, nil, "server", ciphersuite.AlertBadRecordMAC, "derived different keys")
	})
	t.Run("another peer reports its own identity", func(t *testing.T) {
		c, s := milP2PConfigs(t, 0xFF11)
		c.P2PKey = f.nodeC
		r := milHandshakeTCP(t, c, s, nil, nil)
		if r.clientErr != nil || r.serverErr != nil {
			t.Fatal(r.clientErr, r.serverErr)
		}
		if id := r.server.ConnectionState().PeerIdentity; id != milNodeC {
			t.Fatalf("server sees %q", id)
		}
	})
	t.Run("client without ExpectedServerIdentity", func(t *testing.T) {
		c, s := milP2PConfigs(t, 0xFF11)
		c.ExpectedServerIdentity = ""
		r := milHandshakeTCP(t, c, s, nil, nil)
		if r.clientErr == nil || !strings.Contains(r.clientErr.Error(), "ExpectedServerIdentity") {
			t.Fatalf("client error %v", r.clientErr)
		}
	})
}
