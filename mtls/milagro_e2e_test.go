package mtls_test

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

var (
	milCSSuites  = []uint16{0xFF01, 0xFF02, 0xFF03}
	milP2PSuites = []uint16{0xFF11, 0xFF12, 0xFF13}
)

// milMasterSecret extracts the master secret from a key-log buffer.
func milMasterSecret(t *testing.T, log *bytes.Buffer) string {
	t.Helper()
	f := strings.Fields(log.String())
	if len(f) != 3 || f[0] != "CLIENT_RANDOM" {
		t.Fatalf("key log %q", log.String())
	}
	return f[2]
}

// TestMilagroCSAllSuites: each CS suite over TCP with a key combined from
// three D-TA shares, a time permit and a PIN token: data both ways, the
// client identity on the server, and two sessions with the same keys have
// different master secrets (forward-secret ephemeral values).
func TestMilagroCSAllSuites(t *testing.T) {
	f := milFixtureFor(t)
	for _, id := range milCSSuites {
		s := ciphersuite.ByID(id)
		t.Run(s.Name, func(t *testing.T) {
			var pinCalls atomic.Int32
			ccfg := &mtls.Config{
				CSToken:      f.aliceToken,
				GetPIN:       func() (uint32, error) { pinCalls.Add(1); return milPIN, nil },
				CSPermits:    []*pairing.TimePermit{f.permitToday},
				CipherSuites: []uint16{id},
				Time:         milClock(milNow),
			}
			scfg := &mtls.Config{
				CSServerKeys: []*pairing.CSServerSecret{f.secret},
				PermitMode:   pairing.PermitsRequired,
				CipherSuites: []uint16{id},
				Time:         milClock(milNow),
			}
			var secrets []string
			for range 2 {
				var klog bytes.Buffer
				c := ccfg.Clone()
				c.KeyLogWriter = &klog
				r := milHandshakeTCP(t, c, scfg, nil, nil)
				if r.clientErr != nil || r.serverErr != nil {
					t.Fatalf("handshake: client %v, server %v", r.clientErr, r.serverErr)
				}
				exchange(t, r.client, r.server, 40000)
				ss, cs := r.server.ConnectionState(), r.client.ConnectionState()
				if ss.PeerIdentity != milAlice || cs.LocalIdentity != milAlice {
					t.Fatalf("server sees %q, client presented %q", ss.PeerIdentity, cs.LocalIdentity)
				}
				if ss.CipherSuite != id || cs.CipherSuite != id || ss.KeyExchange != ciphersuite.KXMilagroCS || !ss.ExtendedMasterSecret {
					t.Fatalf("state %+v", ss)
				}
				secrets = append(secrets, milMasterSecret(t, &klog))
			}
			if secrets[0] == secrets[1] {
				t.Fatal("two sessions with the same keys share a master secret")
			}
			if n := pinCalls.Load(); n != 1 {
				t.Fatalf("GetPIN called %d times, want once", n)
			}
		})
	}
}

// TestMilagroP2PAllSuites: each P2P suite over TCP; the server learns the
// client's identity, the client the server's.
func TestMilagroP2PAllSuites(t *testing.T) {
	for _, id := range milP2PSuites {
		s := ciphersuite.ByID(id)
		t.Run(s.Name, func(t *testing.T) {
			ccfg, scfg := milP2PConfigs(t, id)
			var secrets []string
			for range 2 {
				var klog bytes.Buffer
				c := ccfg.Clone()
				c.KeyLogWriter = &klog
				r := milHandshakeTCP(t, c, scfg, nil, nil)
				if r.clientErr != nil || r.serverErr != nil {
					t.Fatalf("handshake: client %v, server %v", r.clientErr, r.serverErr)
				}
				exchange(t, r.client, r.server, 40000)
				ss, cs := r.server.ConnectionState(), r.client.ConnectionState()
				if ss.PeerIdentity != milNodeB || ss.LocalIdentity != milNodeA {
					t.Fatalf("server: peer %q local %q", ss.PeerIdentity, ss.LocalIdentity)
				}
				if cs.PeerIdentity != milNodeA || cs.LocalIdentity != milNodeB {
					t.Fatalf("client: peer %q local %q", cs.PeerIdentity, cs.LocalIdentity)
				}
				if cs.KeyExchange != ciphersuite.KXMilagroP2P || cs.CipherSuite != id {
					t.Fatalf("state %+v", cs)
				}
				secrets = append(secrets, milMasterSecret(t, &klog))
			}
			if secrets[0] == secrets[1] {
				t.Fatal("two sessions with the same keys share a master secret")
			}
		})
	}
}
