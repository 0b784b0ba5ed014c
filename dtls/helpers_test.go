package dtls

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

// detRand is a deterministic byte stream (SHA-256 in counter mode) for tests.
type detRand struct {
	mu  sync.Mutex
	ctr uint64
	buf []byte
	key string
}

func newDetRand(key string) *detRand { return &detRand{key: key} }

func (r *detRand) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) {
		if len(r.buf) == 0 {
			var c [8]byte
			for i := range 8 {
				c[i] = byte(r.ctr >> (8 * i))
			}
			r.ctr++
			h := sha256.Sum256(append([]byte(r.key), c[:]...))
			r.buf = h[:]
		}
		m := copy(p[n:], r.buf)
		r.buf = r.buf[m:]
		n += m
	}
	return n, nil
}

// keys holds P2P keys combined from three D-TAs, and keys from other D-TAs.
type keys struct {
	a, b, c *pairing.P2PKey // node-a, node-b, node-c from the three D-TAs
	rogueB  *pairing.P2PKey // node-b from three other D-TAs
}

var (
	keysOnce sync.Once
	keysVal  *keys
	keysErr  error
)

func combined(shares []*pairing.MasterShare, id string) (*pairing.P2PKey, error) {
	var parts []*pairing.P2PKey
	for _, s := range shares {
		k, err := s.IssueP2PKey(id)
		if err != nil {
			return nil, err
		}
		parts = append(parts, k)
	}
	return pairing.CombineP2PKeys(parts...)
}

func testKeys(t testing.TB) *keys {
	t.Helper()
	k, err := loadKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// loadKeys derives the test keys once per process.
func loadKeys() (*keys, error) {
	keysOnce.Do(func() {
		mk := func(seed string) ([]*pairing.MasterShare, error) {
			r := newDetRand(seed)
			var out []*pairing.MasterShare
			for range 3 {
				s, err := pairing.NewMasterShare(r)
				if err != nil {
					return nil, err
				}
				out = append(out, s)
			}
			return out, nil
		}
		dtas, err := mk("dtas")
		if err != nil {
			keysErr = err
			return
		}
		others, err := mk("other-dtas")
		if err != nil {
			keysErr = err
			return
		}
		k := &keys{}
		for _, x := range []struct {
			dst    **pairing.P2PKey
			shares []*pairing.MasterShare
			id     string
		}{{&k.a, dtas, "node-a"}, {&k.b, dtas, "node-b"}, {&k.c, dtas, "node-c"}, {&k.rogueB, others, "node-b"}} {
			if *x.dst, err = combined(x.shares, x.id); err != nil {
				keysErr = err
				return
			}
		}
		keysVal = k
	})
	return keysVal, keysErr
}

// served is the outcome of one server handshake.
type served struct {
	err error
	id  string
}

// serveEcho accepts n connections on l; for each it reports the handshake
// outcome, then echoes datagrams until the peer goes quiet.
func serveEcho(l *Listener, n int) <-chan served {
	ch := make(chan served, n)
	go func() {
		for range n {
			c, err := l.AcceptDTLS()
			if err != nil {
				ch <- served{err: err}
				return
			}
			go func() {
				defer c.Close()
				if err := c.Handshake(); err != nil {
					ch <- served{err: err}
					return
				}
				ch <- served{id: c.PeerIdentity()}
				buf := make([]byte, 2048)
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
				for {
					k, err := c.Read(buf)
					if err != nil {
						break
					}
					if _, err := c.Write(buf[:k]); err != nil {
						break
					}
				}
			}()
		}
	}()
	return ch
}

func listen(t testing.TB, cfg *Config) *Listener {
	t.Helper()
	l, err := Listen("udp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func dial(t testing.TB, addr string, cfg *Config) (*Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return DialContext(ctx, "udp", addr, cfg)
}

// echo sends msg and expects it back.
func echo(c net.Conn, msg []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len(msg)+64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != string(msg) {
		return errors.New("echo mismatch")
	}
	return nil
}

func waitServed(t testing.TB, ch <-chan served) served {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(40 * time.Second):
		t.Fatal("server did not finish")
	}
	return served{}
}

var _ io.Reader = (*detRand)(nil)
