package ciphersuite

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

func TestCheckResumption(t *testing.T) {
	now := time.Unix(1763769600+12*3600, 0)
	today := pairing.Day(now)
	lock := NewLockout()
	for i := 0; i < DefaultLockoutThreshold; i++ {
		lock.Failure("mallory", now)
	}
	srv := &pairing.CSServer{} // only its presence matters here
	cfg := func() *ServerConfig {
		return &ServerConfig{
			PSK: func(id []byte) ([]byte, error) {
				if string(id) == "client1" {
					return []byte("k"), nil
				}
				return nil, errors.New("unknown")
			},
			CS: &CSServer{GetServer: func(id string) *pairing.CSServer {
				if id == "srv" {
					return srv
				}
				return nil
			}, Permits: pairing.PermitsRequired, Lockout: lock},
		}
	}
	cases := []struct {
		name string
		s    ResumedSession
		mod  func(*ServerConfig)
		want string // "" ok, else a substring of the error
	}{
		{"psk", ResumedSession{Kind: KXPSK, PeerIdentity: "client1"}, nil, ""},
		{"psk removed", ResumedSession{Kind: KXECDHEPSK, PeerIdentity: "client2"}, nil, "no longer known"},
		{"psk off", ResumedSession{Kind: KXPSK, PeerIdentity: "client1"}, func(c *ServerConfig) { c.PSK = nil }, "no longer configured"},
		{"cs", ResumedSession{Kind: KXMilagroCS, PeerIdentity: "alice", LocalIdentity: "srv", PermitDay: today}, nil, ""},
		{"cs no key", ResumedSession{Kind: KXMilagroCS, PeerIdentity: "alice", LocalIdentity: "old", PermitDay: today}, nil, "no CS server key"},
		{"cs yesterday's permit", ResumedSession{Kind: KXMilagroCS, PeerIdentity: "alice", LocalIdentity: "srv", PermitDay: today - 1}, nil, "permit day"},
		{"cs no permit", ResumedSession{Kind: KXMilagroCS, PeerIdentity: "alice", LocalIdentity: "srv"}, nil, "permit day"},
		{"cs no permit, optional now", ResumedSession{Kind: KXMilagroCS, PeerIdentity: "alice", LocalIdentity: "srv"},
			func(c *ServerConfig) { c.CS.Permits = pairing.PermitsOptional }, ""},
		{"cs locked", ResumedSession{Kind: KXMilagroCS, PeerIdentity: "mallory", LocalIdentity: "srv", PermitDay: today}, nil, "locked out"},
		{"cs policy", ResumedSession{Kind: KXMilagroCS, PeerIdentity: "alice", LocalIdentity: "srv", PermitDay: today},
			func(c *ServerConfig) { c.VerifyPeerIdentity = func(string) error { return errors.New("gone") } }, "denied"},
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
