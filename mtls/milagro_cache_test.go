package mtls

import (
	"context"
	"crypto/rand"
	"runtime"
	"testing"
	"time"

	"github.com/milagro-go/milagro/handshake"
	"github.com/milagro-go/milagro/pairing"
)

// The prepared-credential cache: one prepared object per set of
// credentials (shared by a Config, its clones and other Configs holding the
// same keys); a PIN token's client per Config holder (shared by clones, not
// by another Config with the same token); and nothing kept once the key or
// the Config is garbage.

func cacheLen() int {
	prepCache.Lock()
	defer prepCache.Unlock()
	return len(prepCache.m)
}

func mustClient(t *testing.T, c *Config) *handshake.ClientConfig {
	t.Helper()
	h, err := c.clientHandshakeConfig()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestMilagroPreparedCache(t *testing.T) {
	share, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	before := cacheLen()
	func() {
		key, err := combinedCS(share.IssueCSClientKey("cache@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		token, err := key.ExtractPIN(42)
		if err != nil {
			t.Fatal(err)
		}
		p2p, err := combinedP2P(share.IssueP2PKey("cache-node"))
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		get := func() (uint32, error) { calls++; return 42, nil }
		c1 := &Config{CSToken: token, GetPIN: get, P2PKey: p2p, ServerIdentity: "server"}
		h1, err := c1.clientHandshakeConfig()
		if err != nil {
			t.Fatal(err)
		}
		c2 := c1.Clone()
		c2.ServerName = "example.com"
		h2, err := c2.clientHandshakeConfig()
		if err != nil {
			t.Fatal(err)
		}
		if csc(t, h1) != csc(t, h2) || h1.KX.P2P.Client != h2.KX.P2P.Client || calls != 1 {
			t.Fatalf("clone did not share the prepared client (GetPIN calls %d)", calls)
		}
		if c2.milagro != c1.milagro {
			t.Fatal("clone has its own holder")
		}
		calls3 := 0
		c3 := &Config{CSToken: token, GetPIN: func() (uint32, error) { calls3++; return 42, nil }}
		h3, err := c3.clientHandshakeConfig()
		if err != nil {
			t.Fatal(err)
		}
		if csc(t, h3) == csc(t, h1) || calls3 != 1 || calls != 1 {
			t.Fatalf("another Config with the same token shared the prepared client (GetPIN calls %d, %d)", calls, calls3)
		}
		if h1.KX.P2P.Client != mustClient(t, &Config{P2PKey: p2p, ServerIdentity: "other"}).KX.P2P.Client {
			t.Fatal("two Configs with the same P2P key prepared it twice")
		}
		c4 := &Config{CSKey: key}
		h4a, _ := c4.clientHandshakeConfig()
		h4b, _ := (&Config{CSKey: key}).clientHandshakeConfig()
		if csc(t, h4a) != csc(t, h4b) {
			t.Fatal("two Configs with the same key prepared it twice")
		}
		s1, _ := (&Config{P2PKey: p2p}).serverHandshakeConfig(context.Background(), Source{})
		s2, _ := (&Config{P2PKey: p2p}).serverHandshakeConfig(context.Background(), Source{})
		if s1.KX.P2P.Server != s2.KX.P2P.Server {
			t.Fatal("P2P server prepared twice")
		}
		secret := combinedSecret(share.IssueCSServerSecret())
		// A server whose GetConfigForClient returns fresh Configs with the
		// same secret.
		srv := &Config{GetConfigForClient: func(*ClientHelloInfo) (*Config, error) {
			return &Config{CSServerKeys: []*pairing.CSServerSecret{secret}, PermitMode: pairing.PermitsOptional}, nil
		}}
		g1, _ := srv.GetConfigForClient(nil)
		g2, _ := srv.GetConfigForClient(nil)
		s3, _ := g1.serverHandshakeConfig(context.Background(), Source{})
		s4, _ := g2.serverHandshakeConfig(context.Background(), Source{})
		if p3, p4 := s3.KX.CS.GetServer(""), s4.KX.CS.GetServer(""); p3 == nil || p3 != p4 {
			t.Fatal("CS server prepared twice")
		}
		if cacheLen() <= before {
			t.Fatal("nothing cached")
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for cacheLen() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := cacheLen(); n > before {
		t.Fatalf("%d cache entries outlive their keys", n-before)
	}
}

// TestMilagroHolderClone: a Clone made before first use shares the holder
// (one GetPIN call), a Clone with another permit reuses the PIN, and a
// Clone with another token asks for its PIN.
func TestMilagroHolderClone(t *testing.T) {
	share, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := combinedCS(share.IssueCSClientKey("holder@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := key.ExtractPIN(7)
	if err != nil {
		t.Fatal(err)
	}
	token2, err := key.ExtractPIN(7)
	if err != nil {
		t.Fatal(err)
	}
	permit, err := combinedPermit(share.IssueTimePermit("holder@example.com", 20000))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	c1 := &Config{CSToken: token, GetPIN: func() (uint32, error) { calls++; return 7, nil },
		Time: func() time.Time { return time.Unix(20000*86400+43200, 0) }}
	c2 := c1.Clone() // before first use
	c3 := c2.Clone()
	c3.CSPermits = []*pairing.TimePermit{permit}
	h1, h2, h3 := mustClient(t, c1), mustClient(t, c2), mustClient(t, c3)
	if csc(t, h1) != csc(t, h2) || calls != 1 {
		t.Fatalf("clone made before first use did not share the prepared client (GetPIN calls %d)", calls)
	}
	if csc(t, h3) == csc(t, h1) || csc(t, h3).Day() != 20000 || calls != 1 {
		t.Fatalf("clone with a permit: GetPIN calls %d", calls)
	}
	if csc(t, mustClient(t, c3.Clone())) != csc(t, h3) {
		t.Fatal("clone with the same permit prepared it again")
	}
	c4 := c1.Clone()
	c4.CSToken = token2
	if mustClient(t, c4); calls != 2 {
		t.Fatalf("clone with another token: GetPIN calls %d, want 2", calls)
	}
}

// csc is the prepared CS client of a handshake configuration.
func csc(t *testing.T, h *handshake.ClientConfig) *pairing.CSClient {
	t.Helper()
	if h.KX.CS.Client == nil {
		t.Fatal("no prepared CS client")
	}
	return h.KX.CS.Client
}
