package interop

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// Session resumption (RFC 5077 tickets, TLS 1.2 abbreviated handshake)
// against OpenSSL and GnuTLS, both ways, and across two `mtls server`
// processes sharing a --ticket-key-file.

// needPeer returns the path of a peer binary; a missing one fails the test.
func needPeer(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("missing peer %s: install %s", name, pkg)
	}
	return p
}

// sClientSession runs one openssl s_client connection to port that saves
// its session to sessFile (and offers it when resume), sends nothing and
// closes; it returns s_client's output.
func sClientSession(t *testing.T, openssl string, port int, s suiteCase, sessFile string, resume bool) string {
	t.Helper()
	args := []string{"s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port), "-tls1_2",
		"-cipher", s.openssl, "-psk", pskHex, "-psk_identity", identity, "-sess_out", sessFile}
	if resume {
		args = append(args, "-sess_in", sessFile)
	}
	cli := startPeer(t, nil, openssl, args...)
	cli.stdin.Close() // EOF on stdin: s_client sends close_notify and exits
	if err := cli.wait(t, 15*time.Second); err != nil {
		t.Fatalf("s_client: %v\n%s", err, cli.output())
	}
	return cli.output()
}

var sessionLine = regexp.MustCompile(`(?m)^(New|Reused), TLSv1\.2, Cipher is (\S+)`)

func sClientReused(t *testing.T, out string, s suiteCase) bool {
	t.Helper()
	m := sessionLine.FindStringSubmatch(out)
	if m == nil || m[2] != s.openssl {
		t.Fatalf("no New/Reused line for %s in s_client output:\n%s", s.openssl, out)
	}
	return m[1] == "Reused"
}

// TestResumeOpenSSLClient: openssl s_client -sess_out / -sess_in ↔ our
// server: the second connection resumes (both sides say so) and carries
// the client's identity.
func TestResumeOpenSSLClient(t *testing.T) {
	openssl := needPeer(t, "openssl", "openssl")
	for _, s := range peerSuites {
		t.Run(s.openssl, func(t *testing.T) {
			ln, port := listen(t, serverConfig(s.id, identity, psk))
			sess := filepath.Join(t.TempDir(), "sess.pem")
			for i, resume := range []bool{false, true} {
				accepted := acceptOne(ln)
				out := sClientSession(t, openssl, port, s, sess, resume)
				r := recvAccept(t, accepted)
				if r.err != nil {
					t.Fatalf("connection %d: %v", i, r.err)
				}
				st := r.c.ConnectionState()
				if reused := sClientReused(t, out, s); reused != resume || st.DidResume != resume {
					t.Fatalf("connection %d: s_client reused %v, our server DidResume %v, want %v", i, reused, st.DidResume, resume)
				}
				if st.PeerIdentity != identity || st.CipherSuite != s.id {
					t.Fatalf("connection %d: identity %q suite %#04x", i, st.PeerIdentity, st.CipherSuite)
				}
				io.Copy(io.Discard, r.c)
			}
		})
	}
}

// TestResumeOpenSSLServer: our client with a ClientSessionCache ↔ openssl
// s_server: the second connection resumes the first's session.
func TestResumeOpenSSLServer(t *testing.T) {
	openssl := needPeer(t, "openssl", "openssl")
	for _, s := range peerSuites {
		t.Run(s.openssl, func(t *testing.T) {
			port := freePort(t)
			srv := startPeer(t, nil, openssl, opensslServerArgs(port, s, identity, "-naccept", "3")...)
			waitListening(t, srv, port)
			cfg := clientConfig(s.id, identity, psk)
			cfg.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
			for i, want := range []bool{false, true, true} {
				c, err := dial(t, port, cfg)
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				st := c.ConnectionState()
				if st.DidResume != want || st.CipherSuite != s.id || st.LocalIdentity != identity || !st.ExtendedMasterSecret {
					t.Fatalf("connection %d: DidResume %v (want %v), suite %#04x, identity %q, EMS %v", i, st.DidResume, want,
						st.CipherSuite, st.LocalIdentity, st.ExtendedMasterSecret)
				}
				c.Close()
			}
		})
	}
}

// TestResumeGnuTLSClient: gnutls-cli --resume ↔ our server: gnutls-cli
// reports the second handshake as resumed, and so does our server.
func TestResumeGnuTLSClient(t *testing.T) {
	bin := needPeer(t, "gnutls-cli", "gnutls-bin")
	for _, s := range peerSuites[:3] { // plain PSK: gnutls-cli 3.7.9 crashes after ECDHE-PSK (gnutls_test.go)
		t.Run(s.name, func(t *testing.T) {
			ln, port := listen(t, serverConfig(s.id, identity, psk))
			first, second := acceptOne(ln), make(chan acceptResult, 1)
			cli := startPeer(t, nil, bin, "-p", strconv.Itoa(port), "127.0.0.1", "--resume",
				"--pskusername", identity, "--pskkey", pskHex, "--priority", s.gnutlsPriority())
			r1 := recvAccept(t, first)
			if r1.err != nil {
				t.Fatalf("first handshake: %v\n%s", r1.err, cli.output())
			}
			go func() { second <- <-acceptOne(ln) }()
			io.Copy(io.Discard, r1.c) // gnutls-cli closes the first connection
			r2 := recvAccept(t, second)
			if r2.err != nil {
				t.Fatalf("resumed handshake: %v\n%s", r2.err, cli.output())
			}
			cli.stdin.Close()
			io.Copy(io.Discard, r2.c)
			r2.c.Close()
			cli.wait(t, 10*time.Second)
			if r1.c.ConnectionState().DidResume || !r2.c.ConnectionState().DidResume {
				t.Fatalf("our server: first resumed %v, second %v\n%s", r1.c.ConnectionState().DidResume,
					r2.c.ConnectionState().DidResume, cli.output())
			}
			if st := r2.c.ConnectionState(); st.PeerIdentity != identity || st.CipherSuite != s.id {
				t.Fatalf("resumed: identity %q suite %#04x", st.PeerIdentity, st.CipherSuite)
			}
			if !strings.Contains(cli.output(), "This is a resumed session") {
				t.Fatalf("gnutls-cli does not report a resumed session:\n%s", cli.output())
			}
		})
	}
}

// TestResumeCLISharedTicketKeys: two `mtls server` processes with one
// --ticket-key-file resume each other's sessions (openssl s_client
// -sess_out against one, -sess_in against the other); a server with other
// keys or --no-tickets does not.
func TestResumeCLISharedTicketKeys(t *testing.T) {
	openssl := needPeer(t, "openssl", "openssl")
	mtlsBin := buildCLI(t)
	dir := t.TempDir()
	shared, other := filepath.Join(dir, "tickets.keys"), filepath.Join(dir, "other.keys")
	if err := os.WriteFile(shared, []byte("# fleet\n"+strings.Repeat("5a", 32)+"\n"+strings.Repeat("a5", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte(strings.Repeat("77", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := peerSuites[0]
	start := func(extra ...string) int {
		port := freePort(t)
		args := append([]string{"server", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--psk-identity", identity, "--psk", pskHex, "--suites", s.name}, extra...)
		srv := startPeer(t, nil, mtlsBin, args...)
		waitListening(t, srv, port)
		return port
	}
	a, b := start("--ticket-key-file", shared), start("--ticket-key-file", shared)
	c, d := start("--ticket-key-file", other), start("--no-tickets")
	sess := filepath.Join(dir, "sess.pem")
	if sClientReused(t, sClientSession(t, openssl, a, s, sess, false), s) {
		t.Fatal("first connection reused")
	}
	if !sClientReused(t, sClientSession(t, openssl, b, s, sess, true), s) {
		t.Fatal("server B did not resume server A's session")
	}
	if sClientReused(t, sClientSession(t, openssl, c, s, sess, true), s) {
		t.Fatal("a server with other ticket keys resumed the session")
	}
	sClientSession(t, openssl, a, s, sess, false)
	if sClientReused(t, sClientSession(t, openssl, d, s, sess, true), s) {
		t.Fatal("a --no-tickets server resumed the session")
	}
}

// TestResumeCLIPSKRotationSIGHUP: a ticket outlives no key. openssl
// s_client -sess_out against `mtls proxy server --psk-file`; client1's key
// is rotated in the file and the proxy reloads on SIGHUP; -sess_in with
// the old key is then not resumed (and, holding only the old key, the
// client fails the full handshake).
func TestResumeCLIPSKRotationSIGHUP(t *testing.T) {
	openssl := needPeer(t, "openssl", "openssl")
	mtlsBin := buildCLI(t)
	dir := t.TempDir()
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	pskFile := filepath.Join(dir, "psk.txt")
	write := func(key string) {
		if err := os.WriteFile(pskFile, []byte(identity+":"+key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(pskHex)
	s := peerSuites[0]
	port := freePort(t)
	srv := startPeer(t, nil, mtlsBin, "proxy", "server", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--target", target.Addr().String(), "--allow-all", "--psk-file", pskFile, "--suites", s.name)
	waitListening(t, srv, port)
	sess := filepath.Join(dir, "sess.pem")
	if sClientReused(t, sClientSession(t, openssl, port, s, sess, false), s) {
		t.Fatal("first connection reused")
	}
	if !sClientReused(t, sClientSession(t, openssl, port, s, sess, true), s) {
		t.Fatal("the session was not resumed before the rotation")
	}
	write(strings.Repeat("c3", 16))
	srv.cmd.Process.Signal(syscall.SIGHUP)
	if !srv.waitOutput("reloaded", 15*time.Second) {
		t.Fatalf("no reload logged:\n%s", srv.output())
	}
	cli := startPeer(t, nil, openssl, "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port), "-tls1_2",
		"-cipher", s.openssl, "-psk", pskHex, "-psk_identity", identity, "-sess_in", sess)
	cli.stdin.Close()
	cli.wait(t, 15*time.Second) // fails: the old key no longer completes a handshake
	out := cli.output()
	if strings.Contains(out, "Reused,") {
		t.Fatalf("a ticket earned with client1's old key was resumed after the rotation:\n%s", out)
	}
	if !srv.waitOutput("reason=bad_key", 15*time.Second) || strings.Count(srv.output(), "connection open") != 2 {
		t.Fatalf("a client holding only the old key was not refused by the full handshake:\n%s", srv.output())
	}
}
