package mtls_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// helloSpy records, per connection the server accepts, the extension
// types of the ClientHello it reads (the first record; the tests' hellos
// fit in one).
type helloSpy struct {
	mu    sync.Mutex
	hells []map[uint16]bool
}

func (s *helloSpy) wrap(c net.Conn) net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hells = append(s.hells, nil)
	return &spyConn{Conn: c, spy: s, i: len(s.hells) - 1}
}

func (s *helloSpy) last() map[uint16]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hells[len(s.hells)-1]
}

type spyConn struct {
	net.Conn
	spy *helloSpy
	i   int
	buf []byte
}

func (c *spyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.i >= 0 { // the ClientHello is not complete yet
		c.buf = append(c.buf, p[:n]...)
		if len(c.buf) >= 5 && len(c.buf) >= 5+int(binary.BigEndian.Uint16(c.buf[3:5])) {
			exts := map[uint16]bool{}
			if len(c.buf) > 9 && c.buf[5] == 1 {
				forEachExt(c.buf[9:], func(typ uint16, data []byte) {
					exts[typ] = typ != 35 || len(data) > 0 // session_ticket: only a real one
				})
			}
			c.spy.mu.Lock()
			c.spy.hells[c.i] = exts
			c.spy.mu.Unlock()
			c.buf, c.i = nil, -1
		}
	}
	return n, err
}

// forEachExt calls f for each extension of a ClientHello body.
func forEachExt(body []byte, f func(typ uint16, data []byte)) {
	p := 2 + 32
	if len(body) < p+1 {
		return
	}
	p += 1 + int(body[p])
	if len(body) < p+2 {
		return
	}
	p += 2 + int(binary.BigEndian.Uint16(body[p:]))
	if len(body) < p+1 {
		return
	}
	p += 1 + int(body[p])
	if len(body) < p+2 {
		return
	}
	exts := body[p+2:]
	for len(exts) >= 4 {
		typ := binary.BigEndian.Uint16(exts)
		n := int(binary.BigEndian.Uint16(exts[2:]))
		if len(exts) < 4+n {
			return
		}
		f(typ, exts[4:4+n])
		exts = exts[4+n:]
	}
}

func resumeOnlyConfigs(t *testing.T) (client, server *mtls.Config) {
	f := milFixtureFor(t)
	keys := [][32]byte{{7, 7, 7}}
	server = &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{milServerKey(t, f, "srv.example")}, PermitMode: pairing.PermitsOptional,
		Time: milClock(milNow), TicketKeys: func() [][32]byte { return keys }}
	client = &mtls.Config{CSKey: f.alice, ServerIdentity: "srv.example", Time: milClock(milNow),
		ClientSessionCache: mtls.NewLRUClientSessionCache(4)}
	return client, server
}

// TestDialResumptionOnly: mtls.Dial holding a CS session sends a
// resumption-only hello (ticket and milagro_cs_resume; no milagro_cs, no
// milagro_pq), and the resumed session stays hybrid; mtls.Client over a
// caller's connection, which cannot reconnect, keeps the full offer.
func TestDialResumptionOnly(t *testing.T) {
	client, server := resumeOnlyConfigs(t)
	spy := &helloSpy{}
	r := milHandshakeTCP(t, client, server, nil, spy.wrap)
	pqOK(t, r, true)
	if h := spy.last(); !h[ciphersuite.ExtMilagroCS] || !h[ciphersuite.ExtMilagroPQ] || h[35] {
		t.Fatalf("first hello: %v", h)
	}
	r = milHandshakeTCP(t, client, server, nil, spy.wrap)
	pqOK(t, r, true)
	h := spy.last()
	if !r.client.ConnectionState().DidResume || r.refused != 0 || r.client.ConnectionState().ResumptionRetried {
		t.Fatalf("not resumed at once (refused %d)", r.refused)
	}
	if h[ciphersuite.ExtMilagroCS] || h[ciphersuite.ExtMilagroPQ] || !h[ciphersuite.ExtMilagroCSResume] || !h[35] {
		t.Fatalf("resumption-only hello carries %v", h)
	}
	if cs := r.server.ConnectionState(); cs.PeerIdentity != milAlice || cs.LocalIdentity != "srv.example" {
		t.Fatalf("resumed identities %q/%q", cs.PeerIdentity, cs.LocalIdentity)
	}

	// A caller's own connection: full offer beside the ticket.
	var full bool
	look := milTamper(func(typ uint8, body []byte) []byte {
		if typ == 1 {
			forEachExt(body, func(t uint16, _ []byte) { full = full || t == ciphersuite.ExtMilagroCS })
		}
		return body
	})
	own := client.Clone()
	own.ServerName = "127.0.0.1" // the session's cache key, as Dial names it
	r = milHandshakeTCP(t, own, server, look, nil)
	if r.clientErr != nil || !r.client.ConnectionState().DidResume || !full {
		t.Fatalf("mtls.Client: %v, resumed %v, full offer %v", r.clientErr, r.client != nil && r.client.ConnectionState().DidResume, full)
	}
}

// TestDialResumptionRefused: when the server does not resume the
// resumption-only hello (ticket keys rotated, session expired, server
// restarted with automatic keys), Dial reconnects once, transparently,
// with a full hybrid handshake; the new session then resumes.
func TestDialResumptionRefused(t *testing.T) {
	for name, change := range map[string]func(s *mtls.Config) *mtls.Config{
		"ticket key rotated": func(s *mtls.Config) *mtls.Config {
			s = s.Clone()
			s.TicketKeys = func() [][32]byte { return [][32]byte{{8, 8, 8}} }
			return s
		},
		// The server's lifetime shortened after the ticket was issued: the
		// client, going by the ticket's hint, still offers it.
		"expired": func(s *mtls.Config) *mtls.Config {
			s = s.Clone()
			s.SessionTicketLifetime = time.Hour
			s.Time = milClock(milNow.Add(2 * time.Hour))
			return s
		},
		"server restarted": func(s *mtls.Config) *mtls.Config {
			return &mtls.Config{CSServerKeys: s.CSServerKeys, PermitMode: s.PermitMode, Time: s.Time}
		},
	} {
		t.Run(name, func(t *testing.T) {
			client, server := resumeOnlyConfigs(t)
			pqOK(t, milHandshakeTCP(t, client, server, nil, nil), true)
			server = change(server)
			client.Time = server.Time
			spy := &helloSpy{}
			r := milHandshakeTCP(t, client, server, nil, spy.wrap)
			pqOK(t, r, true)
			cs := r.client.ConnectionState()
			if r.refused != 1 || cs.DidResume || !cs.ResumptionRetried {
				t.Fatalf("refused %d, resumed %v, retried %v", r.refused, cs.DidResume, cs.ResumptionRetried)
			}
			if h := spy.last(); !h[ciphersuite.ExtMilagroCS] || !h[ciphersuite.ExtMilagroPQ] || h[ciphersuite.ExtMilagroCSResume] {
				t.Fatalf("reconnection's hello: %v", h)
			}
			r = milHandshakeTCP(t, client, server, nil, nil)
			pqOK(t, r, true)
			if cs := r.client.ConnectionState(); !cs.DidResume || cs.ResumptionRetried || r.refused != 0 {
				t.Fatal("the session of the reconnection does not resume")
			}
		})
	}
}

// refusingServer listens on loopback and answers the first refuse
// connections with a handshake_failure alert as soon as the ClientHello is
// in (a man in the middle refusing resumption), then hands connections to
// an mtls server. It returns the address and the number of connections.
func refusingServer(t *testing.T, refuse int, cfg *mtls.Config) (string, func() int, chan error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	n := 0
	errs := make(chan error, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			i := n
			mu.Unlock()
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				if i <= refuse {
					hdr := make([]byte, 5)
					if _, err := io.ReadFull(c, hdr); err != nil {
						errs <- err
						return
					}
					if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint16(hdr[3:]))); err != nil {
						errs <- err
						return
					}
					c.Write([]byte{21, 3, 3, 0, 2, 2, 40})
					io.Copy(io.Discard, c)
					return
				}
				mc := mtls.Server(c, cfg)
				err := mc.Handshake()
				if err == nil {
					_, err = mc.Write([]byte("ok"))
				}
				errs <- err
			}()
		}
	}()
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }, errs
}

// TestDialResumptionRefusedByAttacker: an attacker who refuses
// resumption-only hellos gains nothing: Dial reconnects once with the
// full hybrid offer (all checks of a full handshake), and a refusal of
// that too ends the dial: no third connection, no weaker offer.
func TestDialResumptionRefusedByAttacker(t *testing.T) {
	client, server := resumeOnlyConfigs(t)
	pqOK(t, milHandshakeTCP(t, client, server, nil, nil), true)
	addr, conns, errs := refusingServer(t, 1, server)
	c, err := mtls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	cs := c.ConnectionState()
	if conns() != 2 || cs.DidResume || !cs.ResumptionRetried || !cs.PostQuantum || cs.PeerIdentity != "srv.example" {
		t.Fatalf("%d connections, resumed %v, retried %v, pq %v, peer %q", conns(), cs.DidResume, cs.ResumptionRetried, cs.PostQuantum, cs.PeerIdentity)
	}
	c.Close()

	// Refusing every hello: the first (resumption-only) and the full one.
	addr, conns, _ = refusingServer(t, 2, server)
	_, err = mtls.Dial("tcp", addr, client)
	var ae *mtls.AlertError
	if !errors.As(err, &ae) || !ae.Remote || ae.Alert != ciphersuite.AlertHandshakeFailure || errors.Is(err, mtls.ErrResumptionRefused) {
		t.Fatalf("dial against a refusing attacker: %v", err)
	}
	if conns() != 2 {
		t.Fatalf("%d connections, want 2 (one reconnection at most)", conns())
	}
}
