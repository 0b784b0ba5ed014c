package mtls

import (
	"crypto/rand"
	"runtime"
	"testing"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

// The prepared-credential cache: one prepared object per set of
// credentials (shared by a Config, its clones and other Configs holding the
// same keys), a new one for another GetPIN callback, and nothing kept once
// the key is garbage.

func cacheLen() int {
	prepCache.Lock()
	defer prepCache.Unlock()
	return len(prepCache.m)
}

func TestMilagroPreparedCache(t *testing.T) {
	share, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	before := cacheLen()
	func() {
		key, err := share.IssueCSClientKey("cache@example.com")
		if err != nil {
			t.Fatal(err)
		}
		token, err := key.ExtractPIN(42)
		if err != nil {
			t.Fatal(err)
		}
		p2p, err := share.IssueP2PKey("cache-node")
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		get := func() (uint32, error) { calls++; return 42, nil }
		c1 := &Config{CSToken: token, GetPIN: get, P2PKey: p2p, ExpectedServerIdentity: "server"}
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
		if h1.KX.CS.Client != h2.KX.CS.Client || h1.KX.P2P.Client != h2.KX.P2P.Client || calls != 1 {
			t.Fatalf("clone did not share the prepared client (GetPIN calls %d)", calls)
		}
		c3 := &Config{CSToken: token, GetPIN: func() (uint32, error) { return 43, nil }}
		h3, err := c3.clientHandshakeConfig()
		if err != nil {
			t.Fatal(err)
		}
		if h3.KX.CS.Client == h1.KX.CS.Client {
			t.Fatal("another GetPIN shared the prepared client")
		}
		c4 := &Config{CSKey: key}
		h4a, _ := c4.clientHandshakeConfig()
		h4b, _ := (&Config{CSKey: key}).clientHandshakeConfig()
		if h4a.KX.CS.Client != h4b.KX.CS.Client {
			t.Fatal("two Configs with the same key prepared it twice")
		}
		s1, _ := (&Config{P2PKey: p2p}).serverHandshakeConfig()
		s2, _ := (&Config{P2PKey: p2p}).serverHandshakeConfig()
		if s1.KX.P2P.Server != s2.KX.P2P.Server {
			t.Fatal("P2P server prepared twice")
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
