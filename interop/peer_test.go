package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/internal/testport"
	"github.com/milagro-go/milagro/mtls"
)

// Shared test credentials (within the bounds of docs/protocol.md §6).
const (
	pskHex   = "00112233445566778899aabbccddeeff"
	wrongHex = "00112233445566778899aabbccddeefe"
	identity = "client1"
	hint     = "srvhint"

	payloadSize = 1 << 20 // bytes each way
	peerTimeout = 30 * time.Second
	ioTimeout   = 20 * time.Second
)

var (
	psk      = mustHex(pskHex)
	wrongPSK = mustHex(wrongHex)
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// suiteCase is one PSK suite and how each peer names it.
type suiteCase struct {
	id      uint16
	name    string // IANA name, as in mtls.ConnectionState
	openssl string // OpenSSL cipher name
	gnuKX   string // GnuTLS key exchange (priority keyword)
	gnuCiph string // GnuTLS cipher (priority keyword)
}

// The suites OpenSSL 3.0 and GnuTLS 3.7 offer in TLS 1.2 with AEAD ciphers
// (gnutls-cli -l with the priority string below lists exactly these four; the
// ECDHE_PSK AES-GCM suites 0xD001/0xD002 are ours ↔ ours only).
var peerSuites = []suiteCase{
	{0x00A8, "TLS_PSK_WITH_AES_128_GCM_SHA256", "PSK-AES128-GCM-SHA256", "PSK", "AES-128-GCM"},
	{0x00A9, "TLS_PSK_WITH_AES_256_GCM_SHA384", "PSK-AES256-GCM-SHA384", "PSK", "AES-256-GCM"},
	{0xCCAB, "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256", "PSK-CHACHA20-POLY1305", "PSK", "CHACHA20-POLY1305"},
	{0xCCAC, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-PSK-CHACHA20-POLY1305", "ECDHE-PSK", "CHACHA20-POLY1305"},
}

func (s suiteCase) gnutlsPriority() string {
	return fmt.Sprintf("NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+%s:-CIPHER-ALL:+%s:-MAC-ALL:+AEAD", s.gnuKX, s.gnuCiph)
}

// requirePeer returns the path of a peer binary. A missing peer fails the
// test (never a skip, CI or not): `make test` installs the peers
// (scripts/install-peers.sh) or names the packages.
func requirePeer(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("missing interop peer %s: install %s (make peers)", name, pkg)
	}
	return p
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// a peer that binds it itself (openssl -accept, gnutls-serv, stunnel).
func freePort(t *testing.T) int { return testport.TCP(t) }

// syncBuf is a goroutine-safe buffer that can be waited on.
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan struct{} // closed and replaced on every write
}

func newSyncBuf() *syncBuf { return &syncBuf{ch: make(chan struct{})} }

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	close(b.ch)
	b.ch = make(chan struct{})
	return n, err
}

func (b *syncBuf) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

func (b *syncBuf) String() string { return string(b.Bytes()) }

// waitFor waits until cond holds for the contents, or the timeout passes.
func (b *syncBuf) waitFor(timeout time.Duration, cond func([]byte) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok := cond(b.buf.Bytes())
		ch := b.ch
		b.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// peer is a running peer process bounded by a timeout and killed at cleanup.
type peer struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *syncBuf
	stderr *syncBuf
	done   chan struct{}
	err    error // exit status, valid after done is closed
}

// startPeer starts bin with args; env entries are added to the environment.
func startPeer(t *testing.T, env []string, bin string, args ...string) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 2 * time.Second
	p := &peer{name: bin, cmd: cmd, stdout: newSyncBuf(), stderr: newSyncBuf(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("%s %s\n--- stdout (%d bytes, last 2000):\n%s\n--- stderr:\n%s", bin, strings.Join(args, " "),
				len(p.stdout.Bytes()), tail(p.stdout.Bytes(), 2000), tail(p.stderr.Bytes(), 4000))
		}
	})
	return p
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// output is stdout and stderr together, for matching diagnostics.
func (p *peer) output() string { return p.stdout.String() + "\n" + p.stderr.String() }

// waitOutput waits until stdout or stderr contains sub.
func (p *peer) waitOutput(sub string, timeout time.Duration) bool {
	for end := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(p.output(), sub) {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// wait waits for the process to exit and returns its exit error.
func (p *peer) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", p.name, timeout)
		return nil
	}
}

// exited reports whether the process has exited.
func (p *peer) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitListening waits until something listens on the TCP port (read from
// /proc/net/tcp{,6} so that no probe connection is made, which would use up
// a one-shot server), or the process exits.
func waitListening(t *testing.T, p *peer, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			t.Fatalf("%s exited before listening on %d: %v\n%s", p.name, port, p.err, p.output())
		}
		ok, err := listening(port)
		if err != nil {
			// No /proc: fall back to a delay.
			time.Sleep(500 * time.Millisecond)
			return
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d after 10s", port)
}

func listening(port int) (bool, error) {
	suffix := fmt.Sprintf(":%04X", port)
	found := false
	var firstErr error
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) > 3 && strings.HasSuffix(fs[1], suffix) && fs[3] == "0A" {
				found = true
			}
		}
		fh.Close()
		firstErr = nil
	}
	return found, firstErr
}

// randomPayload returns n random bytes.
func randomPayload(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// linePayload returns n bytes of random hex in lines of width characters
// plus "\n": for peers whose stdin or echo mode is line-oriented (gnutls).
func linePayload(t *testing.T, n, width int) []byte {
	t.Helper()
	raw := randomPayload(t, n/2)
	out := make([]byte, 0, n)
	h := hex.EncodeToString(raw)
	for len(out) < n {
		k := min(width, n-len(out)-1, len(h))
		if k <= 0 {
			out = append(out, '\n')
			break
		}
		out = append(out, h[:k]...)
		out = append(out, '\n')
		h = h[k:]
	}
	return out[:n]
}

// clientConfig is our client's Config for one suite.
func clientConfig(id uint16, ident string, key []byte) *mtls.Config {
	return &mtls.Config{
		CipherSuites:     []uint16{id},
		PSKIdentity:      ident,
		PSK:              key,
		HandshakeTimeout: 10 * time.Second,
	}
}

// serverConfig is our server's Config for one suite, accepting identity/key.
func serverConfig(id uint16, ident string, key []byte) *mtls.Config {
	return &mtls.Config{
		CipherSuites:    []uint16{id},
		PSKIdentityHint: hint,
		GetServerPSK: func(got string) ([]byte, error) {
			if got == ident {
				return key, nil
			}
			return nil, fmt.Errorf("unknown identity %q", got)
		},
		HandshakeTimeout: 10 * time.Second,
	}
}

// assertAlert checks that err carries alert want, sent (remote=false) or
// received (remote=true).
func assertAlert(t *testing.T, err error, want mtls.Alert, remote bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want alert %v (remote=%v)", want, remote)
	}
	var ae *mtls.AlertError
	if !errors.As(err, &ae) {
		t.Fatalf("error %q (%T) carries no *mtls.AlertError; want %v", err, err, want)
	}
	if ae.Alert != want || ae.Remote != remote {
		t.Fatalf("got alert %v (remote=%v) from %q; want %v (remote=%v)", ae.Alert, ae.Remote, err, want, remote)
	}
}

// checkState checks the negotiated suite and the peer identity.
func checkState(t *testing.T, c *mtls.Conn, s suiteCase, wantPeer string) {
	t.Helper()
	st := c.ConnectionState()
	if !st.HandshakeComplete || st.CipherSuite != s.id || st.CipherSuiteName != s.name {
		t.Fatalf("state: complete=%v suite=%#04x %s; want %#04x %s", st.HandshakeComplete, st.CipherSuite, st.CipherSuiteName, s.id, s.name)
	}
	if st.Version != 0x0303 {
		t.Errorf("version %#04x, want 0x0303", st.Version)
	}
	if !st.ExtendedMasterSecret {
		t.Errorf("extended master secret not negotiated")
	}
	// A client sees the server's PSK hint apart: it authenticates no one.
	if st.PeerIdentity != wantPeer && !(wantPeer == hint && st.PeerIdentity == "" && st.PSKIdentityHint == hint) {
		t.Errorf("peer identity %q (hint %q), want %q", st.PeerIdentity, st.PSKIdentityHint, wantPeer)
	}
}

// exchange writes out and reads len(in) bytes concurrently on c, then checks
// what was read equals in. c has a deadline set by the caller.
func exchange(t *testing.T, c net.Conn, out []byte, want []byte) {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(out)
		werr <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %d bytes: %v", len(want), err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write %d bytes: %v", len(out), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received data differs from what the peer sent (first difference at %d)", firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// expectEOF checks that the next Read is a clean io.EOF (close_notify).
func expectEOF(t *testing.T, c net.Conn) {
	t.Helper()
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || err != io.EOF {
		t.Fatalf("after the peer closed: Read = %d, %v; want 0, io.EOF (close_notify)", n, err)
	}
}

// acceptOne accepts one connection on ln and runs its handshake.
func acceptOne(ln net.Listener) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			ch <- acceptResult{err: err}
			return
		}
		c := raw.(*mtls.Conn)
		c.SetDeadline(time.Now().Add(ioTimeout))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ch <- acceptResult{c: c, err: c.HandshakeContext(ctx)}
	}()
	return ch
}

type acceptResult struct {
	c   *mtls.Conn
	err error
}

func recvAccept(t *testing.T, ch <-chan acceptResult) acceptResult {
	t.Helper()
	select {
	case r := <-ch:
		if r.c != nil {
			t.Cleanup(func() { r.c.Close() })
		}
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("no connection accepted within 15s")
		return acceptResult{}
	}
}

// listen starts our server (mtls.Listen) on a free loopback port.
func listen(t *testing.T, cfg *mtls.Config) (net.Listener, int) {
	t.Helper()
	ln, err := mtls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// dial connects our client to 127.0.0.1:port.
func dial(t *testing.T, port int, cfg *mtls.Config) (*mtls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := mtls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", port), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	return c, nil
}
