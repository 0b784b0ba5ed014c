package mtls_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
)

var testPSK = []byte("0123456789abcdef0123456789abcdef")

const testIdentity = "client1"

func pskConfigs(suites ...uint16) (client, server *mtls.Config) {
	client = &mtls.Config{PSKIdentity: testIdentity, PSK: testPSK, CipherSuites: suites}
	server = &mtls.Config{
		CipherSuites:    suites,
		PSKIdentityHint: "hint",
		GetServerPSK: func(id string) ([]byte, error) {
			if id != testIdentity {
				return nil, fmt.Errorf("unknown identity %q", id)
			}
			return testPSK, nil
		},
	}
	return client, server
}

// checkGoroutines fails t if goroutines started during the test are still
// running after a short settle.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// handshakePair runs both handshakes over the given connections.
func handshakePair(t *testing.T, cc, sc *mtls.Conn) (clientErr, serverErr error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- sc.Handshake() }()
	clientErr = cc.Handshake()
	if clientErr != nil {
		cc.Close() // unblock the server if it waits for us
	}
	serverErr = <-done
	return clientErr, serverErr
}

func pipePair(t *testing.T, ccfg, scfg *mtls.Config) (*mtls.Conn, *mtls.Conn) {
	t.Helper()
	c1, c2 := net.Pipe()
	cc, sc := mtls.Client(c1, ccfg), mtls.Server(c2, scfg)
	// net.Pipe is unbuffered: a close_notify would wait for a reader.
	t.Cleanup(func() { c1.Close(); c2.Close() })
	return cc, sc
}

func tcpPair(t *testing.T, ccfg, scfg *mtls.Config) (*mtls.Conn, *mtls.Conn) {
	t.Helper()
	l, err := mtls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			err = c.(*mtls.Conn).Handshake()
		}
		ch <- res{c, err}
	}()
	cc, err := mtls.Dial("tcp", l.Addr().String(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	sc := r.c.(*mtls.Conn)
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return cc, sc
}

// exchange sends n random bytes each way at the same time and checks them.
func exchange(t *testing.T, a, b *mtls.Conn, n int) {
	t.Helper()
	send := func(c *mtls.Conn, data []byte, errc chan<- error) {
		_, err := c.Write(data)
		errc <- err
	}
	da, db := make([]byte, n), make([]byte, n)
	rand.Read(da)
	rand.Read(db)
	errc := make(chan error, 2)
	go send(a, da, errc)
	go send(b, db, errc)
	ga, gb := make([]byte, n), make([]byte, n)
	var wg sync.WaitGroup
	var ea, eb error
	wg.Add(2)
	go func() { defer wg.Done(); _, ea = io.ReadFull(b, ga) }()
	go func() { defer wg.Done(); _, eb = io.ReadFull(a, gb) }()
	wg.Wait()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if ea != nil || eb != nil || !bytes.Equal(ga, da) || !bytes.Equal(gb, db) {
		t.Fatalf("exchange: %v %v, equal %v %v", ea, eb, bytes.Equal(ga, da), bytes.Equal(gb, db))
	}
}

func TestHandshakeAllPSKSuites(t *testing.T) {
	checkGoroutines(t)
	for _, s := range append(ciphersuite.ByKX(ciphersuite.KXECDHEPSK), ciphersuite.ByKX(ciphersuite.KXPSK)...) {
		t.Run(s.Name, func(t *testing.T) {
			ccfg, scfg := pskConfigs(s.ID)
			ccfg.ServerName = "example.test"
			var sni string
			scfg.GetConfigForClient = func(hi *mtls.ClientHelloInfo) (*mtls.Config, error) {
				sni = hi.ServerName
				return nil, nil
			}
			cc, sc := pipePair(t, ccfg, scfg)
			if ce, se := handshakePair(t, cc, sc); ce != nil || se != nil {
				t.Fatalf("handshake: client %v, server %v", ce, se)
			}
			if sni != "example.test" {
				t.Errorf("GetConfigForClient saw ServerName %q", sni)
			}
			exchange(t, cc, sc, 100000)
			cs, ss := cc.ConnectionState(), sc.ConnectionState()
			for _, st := range []mtls.ConnectionState{cs, ss} {
				if !st.HandshakeComplete || st.Version != 0x0303 || st.CipherSuite != s.ID ||
					st.CipherSuiteName != s.Name || st.KeyExchange != s.KX || !st.ExtendedMasterSecret {
					t.Errorf("state %+v", st)
				}
				if len(st.TLSUnique) != 12 {
					t.Errorf("TLSUnique %x", st.TLSUnique)
				}
			}
			if !bytes.Equal(cs.TLSUnique, ss.TLSUnique) {
				t.Error("tls-unique differs between the two sides")
			}
			if ss.PeerIdentity != testIdentity || cs.LocalIdentity != testIdentity {
				t.Errorf("identities: server peer %q, client local %q", ss.PeerIdentity, cs.LocalIdentity)
			}
			if ss.ServerName != "example.test" {
				t.Errorf("server ServerName %q", ss.ServerName)
			}
		})
	}
}

func TestLoopbackTCP(t *testing.T) {
	checkGoroutines(t)
	for _, id := range []uint16{0x00A8, 0xCCAC} {
		ccfg, scfg := pskConfigs(id)
		cc, sc := tcpPair(t, ccfg, scfg)
		exchange(t, cc, sc, 1<<20)
		if got := cc.ConnectionState().CipherSuite; got != id {
			t.Fatalf("suite %#x", got)
		}
		// Close: the peer reads io.EOF (close_notify), not a truncation.
		if err := cc.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("after peer Close: %v", err)
		}
		if err := cc.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
	}
}

func TestDefaultSuitesAndDialer(t *testing.T) {
	checkGoroutines(t)
	ccfg, scfg := pskConfigs()
	l, err := mtls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	d := &mtls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: ccfg}
	nc, err := d.DialContext(context.Background(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := nc.(*mtls.Conn)
	st := c.ConnectionState()
	if !st.HandshakeComplete || st.CipherSuite != 0xCCAC { // forward-secret first
		t.Fatalf("state %+v", st)
	}
	if st.PeerIdentity != "" || st.PSKIdentityHint != "hint" {
		t.Errorf("client PeerIdentity %q (must be empty: a hint is no identity), PSKIdentityHint %q, want the hint", st.PeerIdentity, st.PSKIdentityHint)
	}
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
}

func TestDialTimeoutBoundsHandshake(t *testing.T) {
	checkGoroutines(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept() // never answers
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	ccfg, _ := pskConfigs()
	_, err = mtls.DialWithDialer(&net.Dialer{Timeout: 200 * time.Millisecond}, "tcp", l.Addr().String(), ccfg)
	if err == nil {
		t.Fatal("dial to a server that never answers succeeded")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial error %v is not a timeout", err)
	}
}

func TestHandshakeContextCancel(t *testing.T) {
	checkGoroutines(t)
	ccfg, _ := pskConfigs()
	c1, c2 := net.Pipe()
	defer c2.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the ClientHello arrived (the handshake then waits
		// for an answer that never comes), and swallow the rest.
		if _, err := c2.Read(make([]byte, 1)); err == nil {
			cancel()
		}
		io.Copy(io.Discard, c2)
	}()
	cc := mtls.Client(c1, ccfg)
	defer cc.Close()
	err := cc.HandshakeContext(ctx)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("HandshakeContext: %v, want context.Canceled", err)
	}
	// The failure sticks.
	if _, err := cc.Write([]byte("x")); err == nil {
		t.Fatal("Write after a cancelled handshake succeeded")
	}

	// Config.HandshakeTimeout applies without a context deadline.
	c3, c4 := net.Pipe()
	defer c4.Close()
	go io.Copy(io.Discard, c4)
	ccfg.HandshakeTimeout = 100 * time.Millisecond
	cc2 := mtls.Client(c3, ccfg)
	defer cc2.Close()
	if err := cc2.Handshake(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("HandshakeTimeout: %v", err)
	}
}

func TestHandshakeFailures(t *testing.T) {
	checkGoroutines(t)
	t.Run("WrongPSK", func(t *testing.T) {
		ccfg, scfg := pskConfigs(0x00A8)
		ccfg.PSK = bytes.Repeat([]byte{1}, 32)
		cc, sc := pipePair(t, ccfg, scfg)
		ce, se := handshakePair(t, cc, sc)
		// The server cannot open the client's Finished.
		if a, ok := ciphersuite.AlertOf(se); !ok || a != ciphersuite.AlertBadRecordMAC && a != ciphersuite.AlertDecryptError {
			t.Errorf("server: %v", se)
		}
		var ae *mtls.AlertError
		if !errors.As(ce, &ae) || !ae.Remote {
			t.Errorf("client: %v (want the server's alert)", ce)
		}
		if _, err := sc.Read(make([]byte, 1)); err != se {
			t.Errorf("Read after a failed handshake: %v", err)
		}
	})
	t.Run("UnknownIdentity", func(t *testing.T) {
		ccfg, scfg := pskConfigs(0xCCAC)
		ccfg.PSKIdentity = "mallory"
		cc, sc := pipePair(t, ccfg, scfg)
		ce, se := handshakePair(t, cc, sc)
		if a, ok := ciphersuite.AlertOf(se); !ok || a != ciphersuite.AlertUnknownPSKIdentity {
			t.Errorf("server: %v", se)
		}
		var ae *mtls.AlertError
		if !errors.As(ce, &ae) || !ae.Remote || ae.Alert != ciphersuite.AlertUnknownPSKIdentity {
			t.Errorf("client: %v", ce)
		}
	})
	t.Run("VerifyPeerIdentity", func(t *testing.T) {
		ccfg, scfg := pskConfigs(0xCCAC)
		scfg.VerifyPeerIdentity = func(id string) error { return errors.New("not today") }
		cc, sc := pipePair(t, ccfg, scfg)
		ce, se := handshakePair(t, cc, sc)
		if ce == nil || se == nil {
			t.Fatalf("client %v, server %v", ce, se)
		}
	})
	t.Run("NoCommonSuite", func(t *testing.T) {
		ccfg, _ := pskConfigs(0x00A8)
		_, scfg := pskConfigs(0xCCAB)
		cc, sc := pipePair(t, ccfg, scfg)
		ce, se := handshakePair(t, cc, sc)
		if a, ok := ciphersuite.AlertOf(se); !ok || a != ciphersuite.AlertHandshakeFailure {
			t.Errorf("server: %v", se)
		}
		if ce == nil {
			t.Error("client succeeded")
		}
	})
	t.Run("UnknownSuiteID", func(t *testing.T) {
		ccfg, scfg := pskConfigs(0x1234)
		cc, _ := pipePair(t, ccfg, scfg)
		if err := cc.Handshake(); err == nil || !strings.Contains(err.Error(), "0x1234") {
			t.Errorf("unknown suite: %v", err)
		}
	})
	t.Run("NotTLS", func(t *testing.T) {
		_, scfg := pskConfigs()
		c1, c2 := net.Pipe()
		sc := mtls.Server(c2, scfg)
		defer sc.Close()
		go func() { c1.Write([]byte("GET / HTTP/1.1\r\n\r\n")); io.Copy(io.Discard, c1); c1.Close() }()
		if a, ok := ciphersuite.AlertOf(sc.Handshake()); !ok || a != ciphersuite.AlertUnexpectedMessage {
			t.Errorf("HTTP request: %v", a)
		}
	})
}

func TestDeadlines(t *testing.T) {
	checkGoroutines(t)
	ccfg, scfg := pskConfigs(0xD001)
	cc, sc := tcpPair(t, ccfg, scfg)
	// A Read with a past deadline times out, and the connection survives.
	cc.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := cc.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read with a past deadline: %v", err)
	}
	cc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := cc.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read with a near deadline: %v", err)
	}
	cc.SetReadDeadline(time.Time{})
	exchange(t, cc, sc, 1000)

	// A write timeout is permanent for writes.
	sc.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := sc.Write([]byte("x")); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("write with a past deadline: %v", err)
	}
	sc.SetWriteDeadline(time.Time{})
	if _, err := sc.Write([]byte("x")); err == nil {
		t.Fatal("write after a write timeout succeeded")
	}
	// Reading still works.
	go cc.Write([]byte("z"))
	if _, err := io.ReadFull(sc, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestCloseWriteHalfClose(t *testing.T) {
	checkGoroutines(t)
	ccfg, scfg := pskConfigs(0xCCAB)
	cc, sc := tcpPair(t, ccfg, scfg)
	if _, err := cc.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := cc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Write([]byte("x")); err == nil {
		t.Fatal("Write after CloseWrite succeeded")
	}
	got, err := io.ReadAll(sc)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v", got, err)
	}
	if _, err := sc.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	got, err = io.ReadAll(cc)
	if err != nil || string(got) != "response" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if err := mtls.Client(nil, ccfg).CloseWrite(); err == nil {
		t.Error("CloseWrite before the handshake succeeded")
	}
}

func TestTruncation(t *testing.T) {
	checkGoroutines(t)
	ccfg, scfg := pskConfigs(0x00A8)
	cc, sc := tcpPair(t, ccfg, scfg)
	cc.Write([]byte("abc"))
	cc.NetConn().Close() // TCP FIN without close_notify
	got, err := io.ReadAll(sc)
	if string(got) != "abc" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %q, %v (want a truncation error)", got, err)
	}
}

func TestConcurrentReadWrite(t *testing.T) {
	checkGoroutines(t)
	ccfg, scfg := pskConfigs(0xCCAC)
	cc, sc := tcpPair(t, ccfg, scfg)
	// The server echoes; the client writes and reads concurrently on one Conn.
	go io.Copy(sc, sc)
	const total = 4 << 20
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 10000)
		for sent := 0; sent < total; sent += len(buf) {
			if _, err := cc.Write(buf); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	n, err := io.CopyN(io.Discard, cc, total)
	wg.Wait()
	if n != total || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	// ConnectionState, deadlines and Close from yet another goroutine.
	_ = cc.ConnectionState()
	cc.Close()
}

func TestFirstReadWriteRunsHandshake(t *testing.T) {
	checkGoroutines(t)
	ccfg, scfg := pskConfigs(0xD002)
	cc, sc := pipePair(t, ccfg, scfg)
	go func() {
		buf := make([]byte, 5)
		io.ReadFull(sc, buf) // implicit server handshake
		sc.Write(buf)
	}()
	if _, err := cc.Write([]byte("hello")); err != nil { // implicit client handshake
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(cc, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("%q %v", buf, err)
	}
}

func TestKeyLog(t *testing.T) {
	ccfg, scfg := pskConfigs(0xD001)
	var clog, slog bytes.Buffer
	ccfg.KeyLogWriter, scfg.KeyLogWriter = &clog, &slog
	cc, sc := pipePair(t, ccfg, scfg)
	if ce, se := handshakePair(t, cc, sc); ce != nil || se != nil {
		t.Fatal(ce, se)
	}
	re := regexp.MustCompile(`^CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}\n$`)
	if !re.Match(clog.Bytes()) || clog.String() != slog.String() {
		t.Fatalf("key log lines %q / %q", clog.String(), slog.String())
	}
}

func TestGetClientPSKAndConfigForClient(t *testing.T) {
	ccfg, scfg := pskConfigs(0xCCAC)
	var gotHint string
	ccfg.PSK, ccfg.PSKIdentity = nil, ""
	ccfg.GetClientPSK = func(hint []byte) (string, []byte, error) {
		gotHint = string(hint)
		return "client2", testPSK, nil
	}
	base := scfg
	front := &mtls.Config{CipherSuites: []uint16{0xCCAC}, GetConfigForClient: func(hi *mtls.ClientHelloInfo) (*mtls.Config, error) {
		if len(hi.CipherSuites) == 0 || len(hi.Curves) == 0 {
			return nil, errors.New("empty ClientHelloInfo")
		}
		c := base.Clone()
		c.GetServerPSK = func(id string) ([]byte, error) { return testPSK, nil }
		c.PSKIdentityHint = "per-client"
		return c, nil
	}}
	cc, sc := pipePair(t, ccfg, front)
	if ce, se := handshakePair(t, cc, sc); ce != nil || se != nil {
		t.Fatal(ce, se)
	}
	if gotHint != "per-client" || sc.ConnectionState().PeerIdentity != "client2" {
		t.Fatalf("hint %q, server peer %q", gotHint, sc.ConnectionState().PeerIdentity)
	}
}

func TestFatalAlertEndsConnectionBothWays(t *testing.T) {
	checkGoroutines(t)
	ccfg, scfg := pskConfigs(0xD001)
	cc, sc := tcpPair(t, ccfg, scfg)
	if st := mtls.Client(nil, ccfg).ConnectionState(); st.HandshakeComplete {
		t.Fatal("fresh Conn reports a completed handshake")
	}
	// A forged application data record, injected under the TLS layer.
	forged := append([]byte{23, 3, 3, 0, 40}, make([]byte, 40)...)
	if _, err := cc.NetConn().Write(forged); err != nil {
		t.Fatal(err)
	}
	_, serr := sc.Read(make([]byte, 10))
	var ae *mtls.AlertError
	if !errors.As(serr, &ae) || ae.Remote || ae.Alert != ciphersuite.AlertBadRecordMAC {
		t.Fatalf("server: %v", serr)
	}
	if _, err := sc.Write([]byte("x")); err != serr {
		t.Fatalf("server Write after the fatal alert: %v", err)
	}
	_, cerr := cc.Read(make([]byte, 10))
	if !errors.As(cerr, &ae) || !ae.Remote || ae.Alert != ciphersuite.AlertBadRecordMAC {
		t.Fatalf("client: %v", cerr)
	}
	if _, err := cc.Write([]byte("x")); err != cerr {
		t.Fatalf("client Write after the fatal alert: %v", err)
	}
	if _, err := cc.Read(make([]byte, 1)); err != cerr {
		t.Fatalf("client Read again: %v", err)
	}
}
