package mtls

import (
	"bytes"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"sync"
	"testing"
)

// nullCipher "protects" records by copying them, so the fuzzer can reach the
// post-handshake paths of the record layer.
type nullCipher struct{}

func (nullCipher) ExplicitNonceLen() int { return 0 }
func (nullCipher) Overhead() int         { return 0 }
func (nullCipher) Seal(dst []byte, _ uint64, _ uint8, _ uint16, p []byte) []byte {
	return append(dst, p...)
}
func (nullCipher) Open(dst []byte, _ uint64, _ uint8, _ uint16, f []byte) ([]byte, error) {
	return append(dst, f...), nil
}

func fuzzSeeds(f *testing.F) {
	add := func(mode byte, p *peer) { f.Add(append([]byte{mode}, p.buf.Bytes()...)) }
	p := &peer{}
	p.rec(recordTypeHandshake, hsMsg(1, bytes.Repeat([]byte{1}, 60)))
	add(0, p)
	m := hsMsg(16, make([]byte, 40))
	p = &peer{}
	p.rec(recordTypeHandshake, m[:3]).rec(recordTypeHandshake, m[3:])
	p.rec(recordTypeChangeCipherSpec, []byte{1}).rec(recordTypeHandshake, hsMsg(20, make([]byte, 12)))
	add(0, p)
	p = &peer{}
	p.rec(recordTypeAlert, []byte{1, 100}).rec(recordTypeAlert, []byte{2, 40})
	add(0, p)
	p = &peer{}
	p.rec(recordTypeApplicationData, []byte("hello")).rec(recordTypeApplicationData, nil)
	p.rec(recordTypeHandshake, hsMsg(1, []byte{3, 3})).rec(recordTypeHandshake, hsMsg(0, nil))
	p.rec(recordTypeAlert, []byte{1, 0})
	add(1, p)
	add(1, (&peer{}).raw(23, 3, 3, 0x40, 0x01))
	add(0, (&peer{}).raw([]byte("GET / HTTP/1.0\r\n\r\n")...))
}

// FuzzRecordReader feeds arbitrary bytes as the peer's stream to the record
// layer, during the handshake (mode even) and after it (mode odd, with a
// null cipher), and checks that nothing panics and buffers stay bounded.
func FuzzRecordReader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode, stream := data[0], data[1:]
		fc := &fakeConn{r: bytes.NewReader(stream)}
		c := newConn(fc, &Config{}, mode&2 != 0)
		check := func() {
			if len(c.rbuf.hand) > 4+maxHandshakeMsg+maxPlaintext {
				t.Fatalf("handshake buffer grew to %d", len(c.rbuf.hand))
			}
			if len(c.rbuf.raw) > rawBufLen {
				t.Fatalf("raw buffer grew to %d", len(c.rbuf.raw))
			}
			if cap(c.rbuf.plain) > maxRecordLen {
				t.Fatalf("plaintext buffer grew to %d", cap(c.rbuf.plain))
			}
		}
		if mode&1 == 0 {
			for i := 0; i < 1000; i++ {
				msg, err := c.readHandshake()
				check()
				if err != nil {
					return
				}
				if msg[0] == 16 { // after ClientKeyExchange comes ChangeCipherSpec
					c.setVersion(versionTLS12)
					if err := c.readChangeCipherSpec(nullCipher{}); err != nil {
						return
					}
				}
			}
			return
		}
		c.versionSet = true
		c.in.version, c.out.version = versionTLS12, versionTLS12
		c.in.cipher, c.out.cipher = nullCipher{}, nullCipher{}
		c.handshakeComplete.Store(true)
		_, err := io.Copy(io.Discard, c)
		check()
		if err == nil && c.in.err != io.EOF {
			t.Fatal("clean end of stream without close_notify")
		}
	})
}

// recordingConn records what is written through it.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recordingConn) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.buf.Write(b)
	r.mu.Unlock()
	return r.Conn.Write(b)
}

func fuzzServerConfig() *Config {
	return &Config{
		Rand:            mrand.NewChaCha8([32]byte{1}),
		PSKIdentityHint: "hint",
		GetServerPSK: func(id string) ([]byte, error) {
			if id != "client1" {
				return nil, errors.New("unknown identity")
			}
			return bytes.Repeat([]byte{7}, 32), nil
		},
	}
}

// clientFlights returns what a real client sends in a handshake with suite id.
func clientFlights(f *testing.F, id uint16) []byte {
	c1, c2 := net.Pipe()
	rc := &recordingConn{Conn: c1}
	cc := Client(rc, &Config{PSKIdentity: "client1", PSK: bytes.Repeat([]byte{7}, 32), CipherSuites: []uint16{id}})
	sc := Server(c2, fuzzServerConfig())
	errc := make(chan error, 1)
	go func() { errc <- sc.Handshake() }()
	if err := cc.Handshake(); err != nil {
		f.Fatal(err)
	}
	if err := <-errc; err != nil {
		f.Fatal(err)
	}
	c1.Close()
	c2.Close()
	return rc.buf.Bytes()
}

// FuzzServerHandshake feeds arbitrary bytes as a client's stream to a server
// Conn running the real handshake: no panic, no hang, bounded buffers.
func FuzzServerHandshake(f *testing.F) {
	for _, id := range []uint16{0x00A8, 0xCCAC, 0xD002} {
		fl := clientFlights(f, id)
		f.Add(fl)
		if len(fl) > 5 {
			n := 5 + (int(fl[3])<<8 | int(fl[4]))
			f.Add(fl[:min(n, len(fl))]) // the ClientHello record alone
		}
	}
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Server(&discardConn{fakeConn: fakeConn{r: bytes.NewReader(data)}}, fuzzServerConfig())
		// The server's randomness is deterministic, so a recorded client
		// flight completes the handshake and the fuzzer can reach the
		// encrypted records after it.
		if err := c.Handshake(); err == nil {
			io.Copy(io.Discard, c)
		}
		if len(c.rbuf.hand) > 4+maxHandshakeMsg+maxPlaintext || len(c.rbuf.raw) > rawBufLen {
			t.Fatalf("buffers grew: hand %d raw %d", len(c.rbuf.hand), len(c.rbuf.raw))
		}
	})
}
