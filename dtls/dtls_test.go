package dtls

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

func p2pServerCfg(k *pairing.P2PKey) *Config {
	return &Config{P2PKey: k, Rand: newDetRand("server-" + k.ID()), HandshakeTimeout: 10 * time.Second}
}

func p2pClientCfg(k *pairing.P2PKey, server string) *Config {
	return &Config{P2PKey: k, ServerIdentity: server, Rand: newDetRand("client-" + k.ID()),
		HandshakeTimeout: 10 * time.Second}
}

func TestP2PBothRoles(t *testing.T) {
	k := testKeys(t)
	for _, tc := range []struct{ srv, cli *pairing.P2PKey }{{k.a, k.b}, {k.b, k.a}} {
		t.Run(tc.srv.ID()+"-serves-"+tc.cli.ID(), func(t *testing.T) {
			l := listen(t, p2pServerCfg(tc.srv))
			done := serveEcho(l, 1)
			c, err := dial(t, l.Addr().String(), p2pClientCfg(tc.cli, tc.srv.ID()))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.PeerIdentity(); got != tc.srv.ID() {
				t.Fatalf("client sees %q", got)
			}
			cs := c.ConnectionState()
			if !cs.HandshakeComplete || cs.Mode != ModeP2P || cs.CipherSuite != TLS_PSK_WITH_AES_128_GCM_SHA256 || !cs.UsesConnectionID {
				t.Fatalf("state %+v", cs)
			}
			for i := range 5 {
				if err := echo(c, fmt.Appendf(nil, "datagram %d", i)); err != nil {
					t.Fatal(err)
				}
			}
			ekm, err := c.ExportKeyingMaterial("EXPERIMENTAL test", nil, 16)
			if err != nil || len(ekm) != 16 {
				t.Fatalf("ekm %x %v", ekm, err)
			}
			_ = c.Close()
			s := waitServed(t, done)
			if s.err != nil || s.id != tc.cli.ID() {
				t.Fatalf("server: %+v", s)
			}
		})
	}
}

func TestP2PSuites(t *testing.T) {
	k := testKeys(t)
	for _, s := range []uint16{TLS_PSK_WITH_AES_128_CCM_8, TLS_PSK_WITH_CHACHA20_POLY1305_SHA256} {
		scfg := p2pServerCfg(k.a)
		scfg.CipherSuites = []uint16{s}
		l := listen(t, scfg)
		done := serveEcho(l, 1)
		c, err := dial(t, l.Addr().String(), p2pClientCfg(k.b, "node-a"))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ConnectionState().CipherSuite; got != s {
			t.Fatalf("suite %04x, want %04x", got, s)
		}
		if err := echo(c, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		if r := waitServed(t, done); r.err != nil {
			t.Fatal(r.err)
		}
	}
}

// failing runs one handshake that must fail on both sides.
func failing(t *testing.T, scfg, ccfg *Config, hook func(bool, []byte) [][]byte) (cerr, serr error, srv *Conn) {
	t.Helper()
	scfg.HandshakeTimeout, ccfg.HandshakeTimeout = 4*time.Second, 4*time.Second
	l := listen(t, scfg)
	addr := l.Addr().String()
	if hook != nil {
		addr = newRelay(t, l.Addr(), hook).addr()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := l.AcceptDTLS()
		if err != nil {
			serr = err
			return
		}
		srv = c
		serr = c.Handshake()
	}()
	c, cerr := dial(t, addr, ccfg)
	if cerr == nil {
		_ = c.Close()
	}
	wg.Wait()
	if cerr == nil || serr == nil {
		t.Fatalf("handshake succeeded: client %v, server %v", cerr, serr)
	}
	if srv != nil {
		if id := srv.PeerIdentity(); id != "" {
			t.Fatalf("failed handshake exposes identity %q", id)
		}
		if srv.ConnectionState().HandshakeComplete {
			t.Fatal("failed handshake complete")
		}
	}
	return cerr, serr, srv
}

func TestP2PWrongKey(t *testing.T) {
	k := testKeys(t)
	// node-b's key from other D-TAs: the identity parses, the PSKs differ,
	// Finished does not verify, and the server never exposes "node-b".
	// Neither side gets an alert (the Finished that does not decrypt is
	// dropped), and each says the peer never confirmed the key.
	cerr, serr, _ := failing(t, p2pServerCfg(k.a), p2pClientCfg(k.rogueB, "node-a"), nil)
	if !errors.Is(cerr, ErrKeyConfirmation) || !errors.Is(serr, ErrKeyConfirmation) {
		t.Errorf("wrong client key: client %v; server %v; want ErrKeyConfirmation on both", cerr, serr)
	}
	// A server holding node-b's key from other D-TAs answers as node-b:
	// the client refuses the hint before deriving anything and alerts.
	cerr, serr, _ = failing(t, p2pServerCfg(k.rogueB), p2pClientCfg(k.c, "node-a"), nil)
	if !errors.Is(cerr, pairing.ErrPeerIdentity) || errors.Is(cerr, ErrKeyConfirmation) {
		t.Errorf("wrong server identity: client %v, want ErrPeerIdentity", cerr)
	}
	if serr == nil || errors.Is(serr, ErrKeyConfirmation) || !strings.Contains(serr.Error(), "alert") {
		t.Errorf("wrong server identity: server %v, want the client's alert", serr)
	}
	// The server's key from other D-TAs for its own identity: the client
	// derives a key the server cannot match.
	cerr, serr, _ = failing(t, p2pServerCfg(k.rogueB), p2pClientCfg(k.c, "node-b"), nil)
	if !errors.Is(cerr, ErrKeyConfirmation) || !errors.Is(serr, ErrKeyConfirmation) {
		t.Errorf("wrong server key: client %v; server %v; want ErrKeyConfirmation on both", cerr, serr)
	}
}

func TestP2PWrongServerIdentity(t *testing.T) {
	k := testKeys(t)
	cerr, _, _ := failing(t, p2pServerCfg(k.a), p2pClientCfg(k.b, "node-c"), nil)
	if !errors.Is(cerr, pairing.ErrPeerIdentity) {
		t.Fatalf("client error %v, want ErrPeerIdentity", cerr)
	}
}

// tamper flips one bit at offset off (from the prefix) of the first
// Milagro value in datagrams going the given way.
func tamper(toServerWay bool, off int) func(bool, []byte) [][]byte {
	return func(toServer bool, b []byte) [][]byte {
		if toServer == toServerWay {
			if i := bytes.Index(b, []byte(p2pPrefix)); i >= 0 && i+off < len(b) {
				b = bytes.Clone(b)
				b[i+off] ^= 0x01
			}
		}
		return [][]byte{b}
	}
}

func TestP2PTampered(t *testing.T) {
	k := testKeys(t)
	idOff := len(p2pPrefix) + 2 + 5 // last byte of "node-x"
	for _, tc := range []struct {
		name     string
		toServer bool
		off      int
		clientIs error // the client's error must wrap this, if set
		refuser  string
	}{
		{"hint-id", false, idOff, pairing.ErrPeerIdentity, "client"}, // "node-a" → "node-`"
		{"hint-X", false, idOff + 1 + 20, nil, "client"},
		{"hint-prefix", false, 0, ErrMalformed, "client"},
		{"identity-id", true, idOff, nil, ""}, // "node-b" → "node-c": another PSK, Finished fails unread
		{"identity-W", true, idOff + 1 + 20, nil, "server"},
		{"identity-Y", true, idOff + 1 + 48 + 40, nil, "server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cerr, serr, _ := failing(t, p2pServerCfg(k.a), p2pClientCfg(k.b, "node-a"), tamper(tc.toServer, tc.off))
			t.Logf("client: %v; server: %v", cerr, serr)
			if tc.clientIs != nil && !errors.Is(cerr, tc.clientIs) {
				t.Fatalf("client error %v, want %v", cerr, tc.clientIs)
			}
			// The side that refused sends a fatal alert its peer can read
			// (a plaintext record, not one in the connection-ID format).
			var peerErr error
			switch tc.refuser {
			case "client":
				peerErr = serr
			case "server":
				peerErr = cerr
			}
			if peerErr != nil && !strings.Contains(peerErr.Error(), "alert: Alert Fatal") {
				t.Fatalf("the peer of the %s that refused reports %v, want its alert", tc.refuser, peerErr)
			}
		})
	}
}

func TestIdentityOnlyAfterHandshake(t *testing.T) {
	k := testKeys(t)
	var seen []string
	var mu sync.Mutex
	scfg := p2pServerCfg(k.a)
	scfg.VerifyPeerIdentity = func(id string) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, id)
		if id == "node-c" {
			return errors.New("not on the list")
		}
		return nil
	}
	l := listen(t, scfg)
	type res struct {
		before, after string
		complete      bool
		err           error
	}
	out := make(chan res, 2)
	go func() {
		for range 2 {
			c, err := l.AcceptDTLS()
			if err != nil {
				out <- res{err: err}
				return
			}
			r := res{before: c.PeerIdentity(), complete: c.ConnectionState().HandshakeComplete}
			r.err = c.Handshake()
			r.after = c.PeerIdentity()
			if r.err == nil {
				buf := make([]byte, 64)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Read(buf)
			}
			_ = c.Close()
			out <- r
		}
	}()
	c, err := dial(t, l.Addr().String(), p2pClientCfg(k.b, "node-a"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("x"))
	r := <-out
	if r.err != nil || r.before != "" || r.complete || r.after != "node-b" {
		t.Fatalf("accepted peer: %+v", r)
	}
	_ = c.Close()
	ccfg := p2pClientCfg(k.c, "node-a")
	ccfg.HandshakeTimeout = 4 * time.Second
	if _, err := dial(t, l.Addr().String(), ccfg); err == nil {
		t.Fatal("refused peer connected")
	}
	r = <-out
	if !errors.Is(r.err, ErrPeerIdentity) || r.after != "" {
		t.Fatalf("refused peer: %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "node-b,node-c" {
		t.Fatalf("policy saw %q", seen)
	}
}

func TestClientPolicy(t *testing.T) {
	k := testKeys(t)
	l := listen(t, p2pServerCfg(k.a))
	go func() {
		c, err := l.AcceptDTLS()
		if err == nil {
			_ = c.Handshake()
			_ = c.Close()
		}
	}()
	ccfg := p2pClientCfg(k.b, "node-a")
	ccfg.VerifyPeerIdentity = func(id string) error { return fmt.Errorf("no %s today", id) }
	c, err := dial(t, l.Addr().String(), ccfg)
	if !errors.Is(err, ErrPeerIdentity) || c != nil {
		t.Fatalf("client policy ignored: %v", err)
	}
}

func TestStaticPSK(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 16)
	scfg := &Config{PSK: key, PSKIdentity: "dev-1", PSKIdentityHint: []byte("hint")}
	l := listen(t, scfg)
	done := serveEcho(l, 1)
	c, err := dial(t, l.Addr().String(), &Config{PSK: key, PSKIdentity: "dev-1",
		CipherSuites: []uint16{TLS_PSK_WITH_AES_128_CCM_8}})
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(c, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if cs := c.ConnectionState(); cs.Mode != ModePSK || cs.PeerIdentity != "" || cs.CipherSuite != TLS_PSK_WITH_AES_128_CCM_8 {
		t.Fatalf("state %+v", cs)
	}
	_ = c.Close()
	if s := waitServed(t, done); s.err != nil || s.id != "dev-1" {
		t.Fatalf("server %+v", s)
	}
	// A wrong key and an unknown identity fail.
	failing(t, &Config{PSK: key, PSKIdentity: "dev-1"}, &Config{PSK: []byte("another key....."), PSKIdentity: "dev-1"}, nil)
	failing(t, &Config{PSK: key, PSKIdentity: "dev-1"}, &Config{PSK: key, PSKIdentity: "dev-2"}, nil)
	failing(t, &Config{GetPSK: func(id string) ([]byte, error) { return nil, errors.New("unknown") }},
		&Config{PSK: key, PSKIdentity: "dev-1"}, nil)
}

func TestConfigErrors(t *testing.T) {
	k := testKeys(t)
	for name, cfg := range map[string]*Config{
		"nil":        nil,
		"empty":      {},
		"both":       {P2PKey: k.a, PSK: []byte("k")},
		"suite":      {PSK: []byte("k"), CipherSuites: []uint16{0xC02B}},
		"no-server":  {P2PKey: k.b},
		"client-psk": {GetPSK: func(string) ([]byte, error) { return nil, nil }},
	} {
		if _, err := Dial("udp", "127.0.0.1:9", cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, cfg := range map[string]*Config{
		"empty":       {},
		"no-identity": {PSK: []byte("k")},
		"suite":       {P2PKey: k.a, CipherSuites: []uint16{0x00A9}},
	} {
		if _, err := Listen("udp", "127.0.0.1:0", cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("listen %s: %v", name, err)
		}
	}
	l := listen(t, p2pServerCfg(k.a))
	if err := l.SetConfig(&Config{PSK: []byte("k")}); !errors.Is(err, ErrConfig) {
		t.Errorf("SetConfig: %v", err)
	}
}

func TestLossyReorderingRelay(t *testing.T) {
	k := testKeys(t)
	scfg := p2pServerCfg(k.a)
	scfg.FlightInterval = 100 * time.Millisecond
	scfg.HandshakeTimeout = 30 * time.Second
	l := listen(t, scfg)
	hook, stats := lossy(7, 0.2, 0.2)
	const conns, msgs = 3, 20
	done := serveEcho(l, conns)
	for i := range conns {
		ccfg := p2pClientCfg(k.b, "node-a")
		ccfg.FlightInterval = 100 * time.Millisecond
		ccfg.HandshakeTimeout = 30 * time.Second
		// A relay per connection: each client has its own address, as a
		// lost close_notify would otherwise leave the server's previous
		// connection owning it.
		rl := newRelay(t, l.Addr(), hook)
		c, err := dial(t, rl.addr(), ccfg)
		if err != nil {
			t.Fatalf("handshake %d: %v (listener %+v)", i, err, l.Stats())
		}
		got := 0
		buf := make([]byte, 256)
		for m := range msgs {
			want := fmt.Sprintf("c%d m%d", i, m)
			ok := false
			for try := 0; try < 40 && !ok; try++ {
				if _, err := c.Write([]byte(want)); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
				for {
					n, err := c.Read(buf)
					if err != nil {
						break
					}
					if string(buf[:n]) == want {
						ok = true
						break
					}
				}
			}
			if !ok {
				t.Fatalf("conn %d message %d never echoed", i, m)
			}
			got++
		}
		_ = c.Close()
		if got != msgs {
			t.Fatalf("got %d", got)
		}
	}
	for range conns {
		if s := waitServed(t, done); s.err != nil || s.id != "node-b" {
			t.Fatalf("server: %+v", s)
		}
	}
	seen, dropped, reordered := stats()
	t.Logf("relay: %d datagrams, %d dropped, %d reordered", seen, dropped, reordered)
	if dropped == 0 || reordered == 0 {
		t.Fatal("the relay neither dropped nor reordered")
	}
}

// TestCloneCopiesEveryField: a field added to Config and forgotten in Clone
// fails here.
func TestCloneCopiesEveryField(t *testing.T) {
	k := testKeys(t)
	c := &Config{P2PKey: k.a, ServerIdentity: "s", PSK: []byte("k"), PSKIdentity: "i",
		GetPSK: func(string) ([]byte, error) { return nil, nil }, PSKIdentityHint: []byte("h"),
		VerifyPeerIdentity: func(string) error { return nil }, CipherSuites: []uint16{1},
		HandshakeTimeout: 1, FlightInterval: 2, MTU: 3, DisableConnectionID: true,
		Rand: newDetRand("x"), KeyLogWriter: &bytes.Buffer{}}
	d := c.Clone()
	cv, dv := reflect.ValueOf(c).Elem(), reflect.ValueOf(d).Elem()
	for i := range cv.NumField() {
		f := cv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if cv.Field(i).IsZero() {
			t.Fatalf("test leaves %s unset", f.Name)
		}
		if dv.Field(i).IsZero() {
			t.Errorf("Clone drops %s", f.Name)
		}
	}
	if &c.CipherSuites[0] == &d.CipherSuites[0] {
		t.Error("Clone shares CipherSuites")
	}
}
