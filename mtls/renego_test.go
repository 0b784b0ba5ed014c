package mtls

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// established returns a client and server that completed a real PSK
// handshake over loopback TCP, each logging to its own buffer.
func established(t *testing.T) (cc, sc *Conn, clog, slg *syncBuffer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() { c, _ := l.Accept(); ch <- c }()
	c1, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c2 := <-ch
	psk := bytes.Repeat([]byte{7}, 32)
	clog, slg = &syncBuffer{}, &syncBuffer{}
	logger := func(w io.Writer) *slog.Logger {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cc = Client(c1, &Config{PSKIdentity: "id", PSK: psk, Logger: logger(clog)})
	sc = Server(c2, &Config{GetServerPSK: func(string) ([]byte, error) { return psk, nil }, Logger: logger(slg)})
	t.Cleanup(func() { cc.Close(); sc.Close() })
	errc := make(chan error, 1)
	go func() { errc <- sc.Handshake() }()
	if err := cc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return cc, sc, clog, slg
}

// inject sends a handshake message as an encrypted record from c.
func inject(t *testing.T, c *Conn, msg []byte) {
	t.Helper()
	c.out.Lock()
	defer c.out.Unlock()
	if err := c.writeRecordLocked(recordTypeHandshake, msg); err != nil {
		t.Fatal(err)
	}
}

func TestRenegotiationEndToEnd(t *testing.T) {
	for _, fromClient := range []bool{true, false} {
		cc, sc, clog, slg := established(t)
		asker, answerer, askerLog := sc, cc, slg
		msg := hsMsg(typeHelloRequest, nil)
		if fromClient {
			asker, answerer, askerLog = cc, sc, clog
			msg = hsMsg(typeClientHello, bytes.Repeat([]byte{3}, 80))
		}
		inject(t, asker, msg)
		if _, err := asker.Write([]byte("after")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(answerer, buf); err != nil || string(buf) != "after" {
			t.Fatalf("answerer read %q, %v", buf, err)
		}
		if _, err := answerer.Write([]byte("reply")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(asker, buf); err != nil || string(buf) != "reply" {
			t.Fatalf("asker read %q, %v", buf, err)
		}
		if !strings.Contains(askerLog.String(), "no_renegotiation") {
			t.Fatalf("asker did not see a no_renegotiation warning; log: %s", askerLog.String())
		}
	}
}
