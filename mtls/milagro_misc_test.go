package mtls_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// TestMilagroConcurrentCS: 200 concurrent CS handshakes (with permits)
// against one server Config all succeed, and the prepared credentials are
// shared (GetPIN runs once for all of them).
func TestMilagroConcurrentCS(t *testing.T) {
	f := milFixtureFor(t)
	const n = 200
	var pinCalls atomic.Int32
	ccfg := &mtls.Config{
		CSToken:  f.aliceToken,
		GetPIN:   func() (uint32, error) { pinCalls.Add(1); return milPIN, nil },
		CSPermit: f.permitToday,
		Time:     milClock(milNow),
	}
	scfg := &mtls.Config{CSServerSecret: f.secret, RequirePermits: true, Time: milClock(milNow)}
	l, err := mtls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var served sync.WaitGroup
	serverErrs := make(chan error, n)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func(c *mtls.Conn) {
				defer served.Done()
				defer c.Close()
				if err := c.HandshakeContext(ctx); err != nil {
					serverErrs <- err
					return
				}
				if id := c.ConnectionState().PeerIdentity; id != milAlice {
					serverErrs <- fmt.Errorf("peer %q", id)
					return
				}
				// Echo one line.
				buf := make([]byte, 64)
				k, err := c.Read(buf)
				if err == nil {
					_, err = c.Write(buf[:k])
				}
				if err != nil {
					serverErrs <- err
				}
			}(c.(*mtls.Conn))
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	clientErrs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &mtls.Dialer{Config: ccfg}
			c, err := d.DialContext(ctx, "tcp", l.Addr().String())
			if err != nil {
				clientErrs <- err
				return
			}
			defer c.Close()
			msg := fmt.Sprintf("hello %d", i)
			if _, err := io.WriteString(c, msg); err != nil {
				clientErrs <- err
				return
			}
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
				clientErrs <- fmt.Errorf("echo %q: %v", buf, err)
			}
		}()
	}
	wg.Wait()
	served.Wait()
	close(clientErrs)
	close(serverErrs)
	for err := range clientErrs {
		t.Error("client:", err)
	}
	for err := range serverErrs {
		t.Error("server:", err)
	}
	if c := pinCalls.Load(); c != 1 {
		t.Errorf("GetPIN called %d times", c)
	}
	t.Logf("%d concurrent CS handshakes in %v", n, time.Since(start))
}

// TestMilagroWithPSK: a client offering Milagro and PSK suites together
// gets the server's preferred one.
func TestMilagroWithPSK(t *testing.T) {
	f := milFixtureFor(t)
	cs := []uint16{0xFF01, 0xFF03}
	psk := []uint16{0xD001, 0x00A8}
	p2p := []uint16{0xFF11}
	// A client with CS and PSK credentials and no expected server identity
	// offers both; the server's preference decides.
	client := func(suites []uint16) *mtls.Config {
		return &mtls.Config{
			CSKey:       f.alice,
			PSKIdentity: "psk-client", PSK: testPSK,
			CipherSuites: suites, Time: milClock(milNow),
		}
	}
	server := func(suites []uint16, withCS bool) *mtls.Config {
		s := &mtls.Config{
			P2PKey:       f.nodeA,
			GetServerPSK: func(id string) ([]byte, error) { return testPSK, nil },
			CipherSuites: suites, Time: milClock(milNow),
		}
		if withCS {
			s.CSServerSecret = f.secret
		}
		return s
	}
	cat := func(ls ...[]uint16) []uint16 {
		var out []uint16
		for _, l := range ls {
			out = append(out, l...)
		}
		return out
	}
	cases := []struct {
		name           string
		client, server []uint16
		withCS         bool
		want           uint16
		peer           string
	}{
		{"server prefers CS", cat(psk, cs), cat(cs, psk, p2p), true, 0xFF01, milAlice},
		{"server prefers PSK", cat(cs, psk), cat(psk, cs, p2p), true, 0xD001, "psk-client"},
		{"server without CS secret", cat(cs, psk), cat(cs, psk), false, 0xD001, "psk-client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := milHandshakeTCP(t, client(tc.client), server(tc.server, tc.withCS), nil, nil)
			if r.clientErr != nil || r.serverErr != nil {
				t.Fatalf("client %v, server %v", r.clientErr, r.serverErr)
			}
			st := r.server.ConnectionState()
			if st.CipherSuite != tc.want || st.PeerIdentity != tc.peer {
				t.Fatalf("got %s, peer %q; want %#04x, %q", st.CipherSuiteName, st.PeerIdentity, tc.want, tc.peer)
			}
			exchange(t, r.client, r.server, 1000)
		})
	}
	// With an expected server identity (docs/protocol.md §5) the PSK suites are not
	// offered: a server that prefers PSK gets P2P, which proves node-a.
	t.Run("expected server identity", func(t *testing.T) {
		c := client(cat(psk, cs, p2p))
		c.P2PKey, c.ServerIdentity = f.nodeB, milNodeA
		r := milHandshakeTCP(t, c, server(cat(psk, p2p, cs), true), nil, nil)
		if r.clientErr != nil || r.serverErr != nil {
			t.Fatalf("client %v, server %v", r.clientErr, r.serverErr)
		}
		if st := r.client.ConnectionState(); st.CipherSuite != 0xFF11 || st.PeerIdentity != milNodeA {
			t.Fatalf("got %s, peer %q", st.CipherSuiteName, st.PeerIdentity)
		}
	})
}

// TestMilagroConnContextHTTP: an http.Server on an mtls listener with
// ConnContext gives its handler the client's authenticated identity.
func TestMilagroConnContextHTTP(t *testing.T) {
	ccfg, scfg := milCSConfigs(t, 0xFF01)
	l, err := mtls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		ConnContext: mtls.ConnContext,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, ok := mtls.PeerIdentity(r.Context())
			if !ok {
				http.Error(w, "no identity", http.StatusForbidden)
				return
			}
			c, _ := mtls.ConnFromContext(r.Context())
			fmt.Fprintf(w, "hello %s via %s", id, c.ConnectionState().CipherSuiteName)
		}),
	}
	go srv.Serve(l)
	defer srv.Close()
	tr := &http.Transport{DialContext: (&mtls.Dialer{Config: ccfg}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := "hello " + milAlice + " via TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256"; string(body) != want {
		t.Fatalf("got %q (%s), want %q", body, resp.Status, want)
	}

	// Outside an mtls connection: no identity.
	if _, ok := mtls.PeerIdentity(context.Background()); ok {
		t.Fatal("identity without a connection")
	}
	if ctx := mtls.ConnContext(context.Background(), &net.TCPConn{}); ctx != context.Background() {
		t.Fatal("ConnContext stored a non-mtls conn")
	}
}

// TestMilagroPeerIdentityHandshakes: PeerIdentity runs the handshake when
// it has not run yet.
func TestMilagroPeerIdentityHandshakes(t *testing.T) {
	ccfg, scfg := milP2PConfigs(t, 0xFF13)
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	cc, sc := mtls.Client(c1, ccfg), mtls.Server(c2, scfg)
	done := make(chan error, 1)
	go func() { done <- cc.Handshake() }()
	ctx := mtls.ConnContext(context.Background(), sc)
	id, ok := mtls.PeerIdentity(ctx)
	if !ok || id != milNodeB {
		t.Fatalf("PeerIdentity = %q, %v", id, ok)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestMilagroConfigErrors: local configuration problems fail before any
// byte is sent, with an error naming the field.
func TestMilagroConfigErrors(t *testing.T) {
	f := milFixtureFor(t)
	cases := []struct {
		name string
		cfg  *mtls.Config
		msg  string
	}{
		{"key and token", &mtls.Config{CSKey: f.alice, CSToken: f.aliceToken, GetPIN: func() (uint32, error) { return 1, nil }}, "not both"},
		{"token without GetPIN", &mtls.Config{CSToken: f.aliceToken}, "GetPIN"},
		{"GetPIN fails", &mtls.Config{CSToken: f.aliceToken, GetPIN: func() (uint32, error) { return 0, errors.New("user cancelled") }}, "user cancelled"},
		{"PIN out of range", &mtls.Config{CSToken: f.aliceToken, GetPIN: func() (uint32, error) { return 100_000_000, nil }}, "PIN out of range"},
		{"permit of another identity", &mtls.Config{CSKey: f.bob, CSPermit: f.permitToday, Time: milClock(milNow)}, "CSPermit"},
		{"permit without key", &mtls.Config{CSPermit: f.permitToday, PSKIdentity: "x", PSK: testPSK}, "CSPermit"},
		{"P2P without expected server", &mtls.Config{P2PKey: f.nodeB}, "ExpectedServerIdentity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := net.Pipe()
			defer c1.Close()
			defer c2.Close()
			err := mtls.Client(c1, tc.cfg).Handshake()
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.msg)
			}
		})
	}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	err := mtls.Server(c2, &mtls.Config{CSServerSecret: f.secret, ClockSkew: -time.Second}).Handshake()
	if err == nil || !strings.Contains(err.Error(), "ClockSkew") {
		t.Fatalf("negative skew: %v", err)
	}
}
