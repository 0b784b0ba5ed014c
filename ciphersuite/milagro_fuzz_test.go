package ciphersuite

import (
	"bytes"
	"testing"

	"github.com/milagro-go/milagro/pairing"
)

// Fuzz targets for the Milagro parsers, each driven through the real key
// exchange (so group-element validation is fuzzed too):
//
//	go test -run='^$' -fuzz='^FuzzMilagroCSHello$' -fuzztime=5s ./ciphersuite
//	go test -run='^$' -fuzz='^FuzzMilagroCSServerKeyExchange$' -fuzztime=5s ./ciphersuite
//	go test -run='^$' -fuzz='^FuzzMilagroCSClientKeyExchange$' -fuzztime=5s ./ciphersuite
//	go test -run='^$' -fuzz='^FuzzMilagroP2PServerKeyExchange$' -fuzztime=5s ./ciphersuite
//	go test -run='^$' -fuzz='^FuzzMilagroP2PClientKeyExchange$' -fuzztime=5s ./ciphersuite
//
// Invariants: no panic; every failure is an *AlertError with one of the
// alerts of docs/protocol.md §5.1; whatever is accepted is well formed (it re-encodes to
// the input).

// milSeeds is one honest CS and P2P exchange, the seed corpus.
func milSeeds(f *testing.F) *milTranscript {
	cs := runMilagroKX(f, ByID(0xFF01), milClientConfig(f, 11), milServerConfig(f, 12))
	return cs
}

func milSeedsP2P(f *testing.F) *milTranscript {
	return runMilagroKX(f, ByID(0xFF11), milClientConfig(f, 13), milServerConfig(f, 14))
}

// addVariants seeds f with b and its usual malformations.
func addVariants(f *testing.F, b []byte) {
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add(append(append([]byte(nil), b...), 0))
	f.Add([]byte{})
	flip := append([]byte(nil), b...)
	flip[len(flip)-1] ^= 1
	f.Add(flip)
	inf := append([]byte(nil), b...)
	inf[len(inf)-pairing.G1Size] = 0xc0
	clear(inf[len(inf)-pairing.G1Size+1:])
	f.Add(inf)
}

func milAllowed(t *testing.T, err error, allowed ...Alert) {
	t.Helper()
	a, ok := AlertOf(err)
	if !ok {
		t.Fatalf("error without alert: %v", err)
	}
	for _, x := range allowed {
		if a == x {
			return
		}
	}
	t.Fatalf("alert %s not expected: %v", a, err)
}

func FuzzMilagroCSHello(f *testing.F) {
	tr := milSeeds(f)
	addVariants(f, tr.ext)
	id := append([]byte(nil), tr.ext...)
	id[1] = 0 // identity length 0x00 → 0
	f.Add(id)
	// server_identity: named, with a control character, too long.
	base := tr.ext[:len(tr.ext)-2]
	for _, sid := range []string{"api.example.com", "api\x00", string(make([]byte, 1025))} {
		named := append(append([]byte(nil), base...), byte(len(sid)>>8), byte(len(sid)))
		f.Add(append(named, sid...))
	}
	s := ByID(0xFF01)
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := milServerConfig(t, 15)
		sk, err := NewServerKX(sc, s, &ClientHelloInfo{Extensions: map[uint16][]byte{ExtMilagroCS: data}})
		if err != nil {
			milAllowed(t, err, AlertDecodeError, AlertIllegalParameter, AlertUnrecognizedName, AlertAccessDenied)
			return
		}
		h, err := parseCSHello(data)
		if err != nil {
			t.Fatalf("accepted by the server, refused by the parser: %v", err)
		}
		again, err := marshalCSHello(h)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted %x re-encodes to %x (%v)", data, again, err)
		}
		if sk.PeerIdentity() != "" {
			t.Fatal("identity before the key exchange finished")
		}
	})
}

// FuzzMilagroCSResumeHello: the milagro_cs_resume parser refuses with
// decode_error or illegal_parameter only, and what it accepts re-encodes
// to the same bytes.
func FuzzMilagroCSResumeHello(f *testing.F) {
	for _, id := range []string{"", "srv", "api.example.com", "api\x00", "\xff"} {
		f.Add(append([]byte{byte(len(id) >> 8), byte(len(id))}, id...))
	}
	f.Add([]byte{})
	f.Add([]byte{0, 3, 's', 'r', 'v', 0})
	f.Add([]byte{0x04, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := ParseCSResumeHello(data)
		if err != nil {
			milAllowed(t, err, AlertDecodeError, AlertIllegalParameter)
			return
		}
		again, err := MarshalCSResumeHello(id)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted %x re-encodes to %x (%v)", data, again, err)
		}
	})
}

func FuzzMilagroCSServerKeyExchange(f *testing.F) {
	tr := milSeeds(f)
	addVariants(f, tr.ske)
	s := ByID(0xFF01)
	f.Fuzz(func(t *testing.T, body []byte) {
		ck, err := NewClientKX(milClientConfig(t, 16), []*Suite{s})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ck.HelloExtensions(); err != nil {
			t.Fatal(err)
		}
		if err := ck.ProcessServerKeyExchange(s, body); err != nil {
			milAllowed(t, err, AlertDecodeError, AlertIllegalParameter, AlertUnexpectedMessage)
			return
		}
		if len(body) != pairing.G1Size {
			t.Fatalf("accepted a %d-byte W", len(body))
		}
		cke, pms, err := ck.GenerateClientKeyExchange(s)
		if err != nil || len(cke) != pairing.G1Size || len(pms) != pairing.PMSSize {
			t.Fatalf("after an accepted W: %x %v", cke, err)
		}
	})
}

func FuzzMilagroCSClientKeyExchange(f *testing.F) {
	tr := milSeeds(f)
	addVariants(f, tr.cke)
	s := ByID(0xFF01)
	f.Fuzz(func(t *testing.T, body []byte) {
		sk, err := NewServerKX(milServerConfig(t, 17), s, &ClientHelloInfo{Extensions: map[uint16][]byte{ExtMilagroCS: tr.ext}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sk.GenerateServerKeyExchange(); err != nil {
			t.Fatal(err)
		}
		pms, err := sk.ProcessClientKeyExchange(body)
		if err != nil {
			milAllowed(t, err, AlertDecodeError, AlertIllegalParameter)
			if sk.PeerIdentity() != "" {
				t.Fatal("identity after a failure")
			}
			return
		}
		if len(body) != pairing.G1Size || len(pms) != pairing.PMSSize || sk.PeerIdentity() != milAlice {
			t.Fatalf("accepted %x", body)
		}
	})
}

func FuzzMilagroP2PServerKeyExchange(f *testing.F) {
	tr := milSeedsP2P(f)
	addVariants(f, tr.ske)
	other := append([]byte{0, 6}, "node-z"...)
	f.Add(append(other, tr.ske[2+len(milNodeA):]...))
	s := ByID(0xFF11)
	f.Fuzz(func(t *testing.T, body []byte) {
		ck, err := NewClientKX(milClientConfig(t, 18), []*Suite{s})
		if err != nil {
			t.Fatal(err)
		}
		if err := ck.ProcessServerKeyExchange(s, body); err != nil {
			milAllowed(t, err, AlertDecodeError, AlertIllegalParameter, AlertAccessDenied, AlertUnexpectedMessage)
			return
		}
		id, x, err := parseP2PServerKX(body)
		if err != nil || id != milNodeA {
			t.Fatalf("accepted %x: %q %v", body, id, err)
		}
		again, _ := marshalP2PServerKX(id, x)
		if !bytes.Equal(again, body) {
			t.Fatalf("accepted %x re-encodes to %x", body, again)
		}
		if _, _, err := ck.GenerateClientKeyExchange(s); err != nil {
			t.Fatal(err)
		}
		if ck.PeerIdentity() != milNodeA {
			t.Fatal("peer identity")
		}
	})
}

func FuzzMilagroP2PClientKeyExchange(f *testing.F) {
	tr := milSeedsP2P(f)
	f.Add(tr.cke)
	f.Add(tr.cke[:len(tr.cke)-1])
	f.Add(append(append([]byte(nil), tr.cke...), 0))
	f.Add([]byte{0, 0})
	inf := append([]byte(nil), tr.cke...)
	inf[len(inf)-pairing.G2Size] = 0xc0
	clear(inf[len(inf)-pairing.G2Size+1:])
	f.Add(inf)
	s := ByID(0xFF11)
	f.Fuzz(func(t *testing.T, body []byte) {
		sk, err := NewServerKX(milServerConfig(t, 19), s, &ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sk.GenerateServerKeyExchange(); err != nil {
			t.Fatal(err)
		}
		pms, err := sk.ProcessClientKeyExchange(body)
		if err != nil {
			milAllowed(t, err, AlertDecodeError, AlertIllegalParameter)
			return
		}
		id, w, y, err := parseP2PClientKX(body)
		if err != nil || len(pms) != pairing.PMSSize || sk.PeerIdentity() != id {
			t.Fatalf("accepted %x: %v", body, err)
		}
		again, _ := marshalP2PClientKX(id, w, y)
		if !bytes.Equal(again, body) {
			t.Fatalf("accepted %x re-encodes to %x", body, again)
		}
	})
}
