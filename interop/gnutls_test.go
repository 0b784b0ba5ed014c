package interop

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// GnuTLS notes, found by experiment with GnuTLS 3.7.9:
//   - gnutls-serv --echo is line-oriented (it parses each line as a possible
//     command), so the payload is 1 MiB of hex text in lines; --crlf keeps
//     CR LF as sent. It binds 0.0.0.0 and :: (it has no bind-address option);
//     we connect to 127.0.0.1 only. It never exits by itself: cleanup kills it.
//   - gnutls-serv does not answer an unknown username with
//     unknown_psk_identity: it derives a random key (hiding which users
//     exist), so a wrong identity looks like a wrong key: bad_record_mac.
//   - gnutls-cli prints its session info on stdout unless --logfile is given.
//     On stdin EOF it sends close_notify and reads until the server closes.
//   - gnutls-cli 3.7.9 crashes (SIGSEGV in gnutls_psk_server_get_username,
//     called from its print_info) right after every ECDHE-PSK handshake. For
//     that suite we preload a one-function shim that makes that call return
//     NULL (built with cc); without a C compiler that case is skipped.

func writePSKFile(t *testing.T, ident string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "psk.txt")
	if err := os.WriteFile(f, []byte(ident+":"+pskHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func startGnutlsServ(t *testing.T, bin string, s suiteCase) (*peer, int) {
	t.Helper()
	port := freePort(t)
	srv := startPeer(t, nil, bin, "-p", strconv.Itoa(port), "--pskpasswd", writePSKFile(t, identity),
		"--pskhint", hint, "--priority", s.gnutlsPriority(), "--echo", "--crlf", "--nodb")
	waitListening(t, srv, port)
	return srv, port
}

// startGnutlsCli starts gnutls-cli against our server on port.
func startGnutlsCli(t *testing.T, bin string, port int, s suiteCase, ident, key string) *peer {
	t.Helper()
	var env []string
	if s.gnuKX == "ECDHE-PSK" {
		env = []string{"LD_PRELOAD=" + gnutlsCliShim(t)}
	}
	return startPeer(t, env, bin, "-p", strconv.Itoa(port), "127.0.0.1",
		"--pskusername", ident, "--pskkey", key, "--priority", s.gnutlsPriority(),
		"--logfile", filepath.Join(t.TempDir(), "gnutls-cli.log"))
}

func gnutlsCliLog(p *peer) string {
	for i, a := range p.cmd.Args {
		if a == "--logfile" && i+1 < len(p.cmd.Args) {
			b, _ := os.ReadFile(p.cmd.Args[i+1])
			return string(b)
		}
	}
	return ""
}

var (
	shimOnce sync.Once
	shimPath string
	shimErr  error
)

// gnutlsCliShim builds (once) the LD_PRELOAD work-around for the gnutls-cli
// 3.7.9 ECDHE-PSK crash; without a C compiler the test fails (install gcc).
func gnutlsCliShim(t *testing.T) string {
	t.Helper()
	shimOnce.Do(func() {
		cc, err := exec.LookPath("cc")
		if err != nil {
			shimErr = err
			return
		}
		dir, err := os.MkdirTemp("", "interop-shim")
		if err != nil {
			shimErr = err
			return
		}
		src := filepath.Join(dir, "shim.c")
		os.WriteFile(src, []byte("const char *gnutls_psk_server_get_username(void *s) { (void)s; return 0; }\n"), 0o600)
		shimPath = filepath.Join(dir, "shim.so")
		if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", shimPath, src).CombinedOutput(); err != nil {
			shimErr = &exec.Error{Name: string(out), Err: err}
		}
	})
	if shimErr != nil {
		t.Fatalf("gnutls-cli 3.7.9 crashes after ECDHE-PSK handshakes and the work-around needs a C compiler (install gcc): %v", shimErr)
	}
	return shimPath
}

// TestGnuTLSServer: our client (mtls.Dial) ↔ gnutls-serv --echo.
func TestGnuTLSServer(t *testing.T) {
	bin := requirePeer(t, "gnutls-serv", "gnutls-bin")
	for _, s := range peerSuites {
		t.Run(s.name, func(t *testing.T) {
			data := linePayload(t, payloadSize, 64)
			_, port := startGnutlsServ(t, bin, s)
			c, err := dial(t, port, clientConfig(s.id, identity, psk))
			if err != nil {
				t.Fatalf("handshake with gnutls-serv: %v", err)
			}
			checkState(t, c, s, hint)
			exchange(t, c, data, data) // 1 MiB each way: the echo comes back
			if err := c.CloseWrite(); err != nil {
				t.Fatalf("CloseWrite: %v", err)
			}
			expectEOF(t, c) // gnutls-serv answers close_notify with close_notify
		})
	}
}

// TestGnuTLSClient: gnutls-cli ↔ our server (mtls.Listen), echoing.
func TestGnuTLSClient(t *testing.T) {
	bin := requirePeer(t, "gnutls-cli", "gnutls-bin")
	for _, s := range peerSuites {
		t.Run(s.name, func(t *testing.T) {
			// gnutls-cli sends a record per line read: long lines keep it quick.
			data := linePayload(t, payloadSize, 4000)
			ln, port := listen(t, serverConfig(s.id, identity, psk))
			accepted := acceptOne(ln)
			cli := startGnutlsCli(t, bin, port, s, identity, pskHex)
			go func() {
				cli.stdin.Write(data)
				cli.stdin.Close() // gnutls-cli then sends close_notify
			}()
			r := recvAccept(t, accepted)
			if r.err != nil {
				t.Fatalf("handshake with gnutls-cli: %v", r.err)
			}
			checkState(t, r.c, s, identity)
			// Echo until the client's close_notify (io.Copy stops at io.EOF).
			n, err := io.Copy(r.c, r.c)
			if err != nil {
				t.Fatalf("echo: %v after %d bytes", err, n)
			}
			if n != int64(len(data)) {
				t.Fatalf("echoed %d bytes, want %d", n, len(data))
			}
			if err := r.c.Close(); err != nil {
				t.Fatalf("Close (close_notify): %v", err)
			}
			if err := cli.wait(t, 10*time.Second); err != nil {
				t.Fatalf("gnutls-cli: %v\n%s", err, gnutlsCliLog(cli))
			}
			if got := cli.stdout.Bytes(); !bytes.Equal(got, data) {
				t.Fatalf("gnutls-cli received %d bytes, want the %d echoed (first difference at %d)", len(got), len(data), firstDiff(got, data))
			}
			if log := gnutlsCliLog(cli); !strings.Contains(log, "Peer has closed the GnuTLS connection") {
				t.Fatalf("gnutls-cli did not see our close_notify:\n%s", log)
			}
		})
	}
}

// TestGnuTLSBadCredentials: wrong key / identity against GnuTLS both ways.
func TestGnuTLSBadCredentials(t *testing.T) {
	serv := requirePeer(t, "gnutls-serv", "gnutls-bin")
	cliBin := requirePeer(t, "gnutls-cli", "gnutls-bin")
	for _, s := range []suiteCase{peerSuites[0], peerSuites[3]} {
		for _, tc := range []struct {
			name  string
			ident string
			key   []byte
		}{{"wrong-psk", identity, wrongPSK}, {"wrong-identity", "intruder", psk}} {
			t.Run("ours-to-gnutls-serv/"+tc.name+"/"+s.name, func(t *testing.T) {
				srv, port := startGnutlsServ(t, serv, s)
				_, err := dial(t, port, clientConfig(s.id, tc.ident, tc.key))
				// gnutls-serv cannot decrypt our Finished (an unknown user
				// gets a random key): bad_record_mac.
				assertAlert(t, err, ciphersuite.AlertBadRecordMAC, true)
				if !srv.waitOutput("Decryption has failed", 5*time.Second) {
					t.Fatalf("gnutls-serv did not report the decryption failure:\n%s", srv.output())
				}
			})
		}
		t.Run("gnutls-cli-to-ours/wrong-psk/"+s.name, func(t *testing.T) {
			ln, port := listen(t, serverConfig(s.id, identity, psk))
			accepted := acceptOne(ln)
			cli := startGnutlsCli(t, cliBin, port, s, identity, wrongHex)
			r := recvAccept(t, accepted)
			assertAlert(t, r.err, ciphersuite.AlertBadRecordMAC, false)
			if err := cli.wait(t, 10*time.Second); err == nil {
				t.Fatalf("gnutls-cli exited 0 after a failed handshake")
			}
			if out := cli.output() + gnutlsCliLog(cli); !strings.Contains(out, "Received alert [20]") {
				t.Fatalf("gnutls-cli did not receive bad_record_mac (20):\n%s", out)
			}
		})
		t.Run("gnutls-cli-to-ours/wrong-identity/"+s.name, func(t *testing.T) {
			ln, port := listen(t, serverConfig(s.id, identity, psk))
			accepted := acceptOne(ln)
			cli := startGnutlsCli(t, cliBin, port, s, "intruder", pskHex)
			r := recvAccept(t, accepted)
			assertAlert(t, r.err, ciphersuite.AlertUnknownPSKIdentity, false)
			if err := cli.wait(t, 10*time.Second); err == nil {
				t.Fatalf("gnutls-cli exited 0 after a failed handshake")
			}
			if out := cli.output() + gnutlsCliLog(cli); !strings.Contains(out, "Received alert [115]") {
				t.Fatalf("gnutls-cli did not receive unknown_psk_identity (115):\n%s", out)
			}
		})
	}
}
