package ciphersuite

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

// lockedGuard is a HelloGuard that reports a fixed set of locked identities.
type lockedGuard map[string]bool

func (g lockedGuard) Admit(*HelloAttempt) (Admission, error) { return nil, errors.New("unused") }
func (g lockedGuard) Locked(id string) bool                  { return g[id] }

func csHelloFor(t *testing.T, id, serverID string) *ClientHelloInfo {
	t.Helper()
	data, err := marshalCSHello(&pairing.CSHello{ID: id, U: make([]byte, pairing.G1Size), V: make([]byte, pairing.G1Size), ServerID: serverID})
	if err != nil {
		t.Fatal(err)
	}
	return &ClientHelloInfo{Extensions: map[uint16][]byte{ExtMilagroCS: data}}
}

func TestCheckResumption(t *testing.T) {
	now := time.Unix(1763769600+12*3600, 0)
	today := pairing.Day(now)
	srv := &pairing.CSServer{} // only its presence matters here
	pskKey := []byte("k")
	cfg := func() *ServerConfig {
		return &ServerConfig{
			PSK: func(id []byte) ([]byte, error) {
				if string(id) == "client1" {
					return pskKey, nil
				}
				return nil, errors.New("unknown")
			},
			CS: &CSServer{GetServer: func(id string) *pairing.CSServer {
				if id == "srv" {
					return srv
				}
				return nil
			}, Permits: pairing.PermitsRequired, Guard: lockedGuard{"mallory": true}},
			TicketScope: []byte("tenant-a"),
		}
	}
	hello := csHelloFor(t, "alice", "srv")
	// bound returns s with the binding the server computes now.
	bound := func(s ResumedSession) ResumedSession {
		b, err := cfg().SessionBinding(&s)
		if err != nil {
			t.Fatal(err)
		}
		s.Binding = b
		return s
	}
	psk := bound(ResumedSession{Kind: KXPSK, PeerIdentity: "client1", ServerName: "a.example"})
	cs := bound(ResumedSession{Kind: KXMilagroCS, PeerIdentity: "alice", LocalIdentity: "srv", PermitDay: today, Hello: hello})
	mallory := bound(ResumedSession{Kind: KXMilagroCS, PeerIdentity: "mallory", LocalIdentity: "srv", PermitDay: today, Hello: csHelloFor(t, "mallory", "srv")})
	with := func(s ResumedSession, f func(*ResumedSession)) ResumedSession { f(&s); return s }
	cases := []struct {
		name string
		s    ResumedSession
		mod  func(*ServerConfig)
		want string // "" ok, else a substring of the error
	}{
		{"psk", psk, nil, ""},
		{"psk removed", ResumedSession{Kind: KXECDHEPSK, PeerIdentity: "client2"}, nil, "no longer known"},
		{"psk off", psk, func(c *ServerConfig) { c.PSK = nil }, "no longer configured"},
		{"psk key rotated", psk, func(c *ServerConfig) {
			c.PSK = func([]byte) ([]byte, error) { return []byte("rotated"), nil }
		}, "changed"},
		{"psk other tenant", psk, func(c *ServerConfig) { c.TicketScope = []byte("tenant-b") }, "changed"},
		{"psk other server name", with(psk, func(s *ResumedSession) { s.ServerName = "b.example" }), nil, "changed"},
		{"psk no binding", with(psk, func(s *ResumedSession) { s.Binding = nil }), nil, "changed"},
		{"cs", cs, nil, ""},
		{"cs no key", with(cs, func(s *ResumedSession) { s.LocalIdentity = "old" }), nil, "no CS server key"},
		{"cs yesterday's permit", with(cs, func(s *ResumedSession) { s.PermitDay = today - 1 }), nil, "permit day"},
		{"cs no permit", with(cs, func(s *ResumedSession) { s.PermitDay = 0 }), nil, "permit day"},
		{"cs no permit, optional now", with(cs, func(s *ResumedSession) { s.PermitDay = 0 }), func(c *ServerConfig) { c.CS.Permits = pairing.PermitsOptional }, ""},
		{"cs locked", mallory, nil, "locked out"},
		{"cs other server identity asked", with(cs, func(s *ResumedSession) { s.Hello = csHelloFor(t, "alice", "b.example") }), nil, "asks for server identity"},
		{"cs no milagro_cs", with(cs, func(s *ResumedSession) { s.Hello = &ClientHelloInfo{} }), nil, "no milagro_cs"},
		{"cs resumption-only", with(cs, func(s *ResumedSession) { s.Hello = csResumeHello(t, "srv") }), nil, ""},
		{"cs resumption-only, other server identity", with(cs, func(s *ResumedSession) { s.Hello = csResumeHello(t, "b.example") }), nil, "asks for server identity"},
		{"cs resumption-only, no server identity", with(cs, func(s *ResumedSession) { s.Hello = csResumeHello(t, "") }), nil, "asks for server identity"},
		{"cs resumption-only, malformed", with(cs, func(s *ResumedSession) {
			s.Hello = &ClientHelloInfo{Extensions: map[uint16][]byte{ExtMilagroCSResume: {0, 5, 's'}}}
		}), nil, "milagro_cs_resume"},
		{"cs policy", cs, func(c *ServerConfig) { c.VerifyPeerIdentity = func(string) error { return errors.New("gone") } }, "denied"},
		{"p2p none", ResumedSession{Kind: KXMilagroP2P, PeerIdentity: "b", LocalIdentity: "a"}, nil, "no P2P key"},
		{"unknown kind", ResumedSession{Kind: 99}, nil, "unknown key exchange"},
	}
	for _, tc := range cases {
		c := cfg()
		if tc.mod != nil {
			tc.mod(c)
		}
		err := c.CheckResumption(&tc.s, now)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// The binding hashes the PSK; it never carries it.
func TestSessionBindingHidesKey(t *testing.T) {
	key := bytes.Repeat([]byte{0x5a}, 32)
	c := &ServerConfig{PSK: func([]byte) ([]byte, error) { return key, nil }}
	b, err := c.SessionBinding(&ResumedSession{Kind: KXPSK, PeerIdentity: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 32 || bytes.Contains(b, key[:8]) {
		t.Fatalf("binding %x", b)
	}
}

// csResumeHello is a resumption-only ClientHello asking for server
// identity id (milagro_cs_resume).
func csResumeHello(t *testing.T, id string) *ClientHelloInfo {
	t.Helper()
	data, err := MarshalCSResumeHello(id)
	if err != nil {
		t.Fatal(err)
	}
	return &ClientHelloInfo{Extensions: map[uint16][]byte{ExtMilagroCSResume: data}}
}

// The milagro_cs_resume parser: framing (decode_error), identity rules
// (illegal_parameter), and a round trip.
func TestCSResumeHelloWire(t *testing.T) {
	for _, id := range []string{"", "srv", "api.example.com"} {
		data, err := MarshalCSResumeHello(id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseCSResumeHello(data)
		if err != nil || got != id {
			t.Fatalf("%q: round trip gives %q, %v", id, got, err)
		}
	}
	long := make([]byte, 2+1025)
	long[0], long[1] = 0x04, 0x01
	for name, tc := range map[string]struct {
		data []byte
		want Alert
	}{
		"empty":        {nil, AlertDecodeError},
		"one byte":     {[]byte{0}, AlertDecodeError},
		"truncated":    {[]byte{0, 4, 's', 'r', 'v'}, AlertDecodeError},
		"trailing":     {[]byte{0, 1, 's', 0}, AlertDecodeError},
		"too long":     {long, AlertDecodeError},
		"not utf-8":    {[]byte{0, 2, 0xff, 0xfe}, AlertIllegalParameter},
		"control char": {[]byte{0, 4, 's', 'r', 'v', 0}, AlertIllegalParameter},
	} {
		_, err := ParseCSResumeHello(tc.data)
		var ae *AlertError
		if !errors.As(err, &ae) || ae.Alert != tc.want {
			t.Errorf("%s: %v, want %s", name, err, tc.want)
		}
	}
	if _, err := MarshalCSResumeHello(string(make([]byte, 1025))); err == nil {
		t.Fatal("an over-long server identity was marshalled")
	}
}
