package interop

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// TestExtendedMasterSecretRequired: a GnuTLS peer with EMS disabled
// (%NO_SESSION_HASH) is refused with handshake_failure by default, both when
// we are the server and the client, and accepted with InsecureAllowNoEMS.
func TestExtendedMasterSecretRequired(t *testing.T) {
	cliBin := requirePeer(t, "gnutls-cli", "gnutls-bin")
	servBin := requirePeer(t, "gnutls-serv", "gnutls-bin")
	s := peerSuites[0]
	noEMS := s.gnutlsPriority() + ":%NO_SESSION_HASH"

	for _, allow := range []bool{false, true} {
		name := "required"
		if allow {
			name = "insecure-allowed"
		}
		t.Run("gnutls-cli-to-ours/"+name, func(t *testing.T) {
			cfg := serverConfig(s.id, identity, psk)
			cfg.InsecureAllowNoEMS = allow
			ln, port := listen(t, cfg)
			accepted := acceptOne(ln)
			cli := startPeer(t, nil, cliBin, "-p", strconv.Itoa(port), "127.0.0.1",
				"--pskusername", identity, "--pskkey", pskHex, "--priority", noEMS,
				"--logfile", filepath.Join(t.TempDir(), "gnutls-cli.log"))
			r := recvAccept(t, accepted)
			if !allow {
				assertAlert(t, r.err, ciphersuite.AlertHandshakeFailure, false)
				cli.wait(t, 10*time.Second)
				if log := gnutlsCliLog(cli); !strings.Contains(log, "Received alert [40]") {
					t.Fatalf("gnutls-cli did not receive handshake_failure (40):\n%s", log)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("handshake without EMS, allowed: %v", r.err)
			}
			if r.c.ConnectionState().ExtendedMasterSecret {
				t.Fatal("EMS reported although the peer disabled it")
			}
			msg := []byte("no ems\n")
			cli.stdin.Write(msg)
			cli.stdin.Close()
			if n, err := io.Copy(r.c, r.c); err != nil || n != int64(len(msg)) {
				t.Fatalf("echo: %d bytes, %v", n, err)
			}
			r.c.Close()
			if err := cli.wait(t, 10*time.Second); err != nil {
				t.Fatalf("gnutls-cli: %v\n%s", err, gnutlsCliLog(cli))
			}
			if !bytes.Equal(cli.stdout.Bytes(), msg) {
				t.Fatalf("gnutls-cli got %q", cli.stdout.Bytes())
			}
		})
		t.Run("ours-to-gnutls-serv/"+name, func(t *testing.T) {
			port := freePort(t)
			srv := startPeer(t, nil, servBin, "-p", strconv.Itoa(port), "--pskpasswd", writePSKFile(t, identity),
				"--pskhint", hint, "--priority", noEMS, "--echo", "--nodb")
			waitListening(t, srv, port)
			cfg := clientConfig(s.id, identity, psk)
			cfg.InsecureAllowNoEMS = allow
			c, err := dial(t, port, cfg)
			if !allow {
				// The ServerHello lacks extended_master_secret: we abort.
				assertAlert(t, err, ciphersuite.AlertHandshakeFailure, false)
				return
			}
			if err != nil {
				t.Fatalf("handshake without EMS, allowed: %v", err)
			}
			if c.ConnectionState().ExtendedMasterSecret {
				t.Fatal("EMS reported although the peer disabled it")
			}
			exchange(t, c, []byte("no ems\n"), []byte("no ems\n"))
		})
	}
}

// TestKeyLogMatchesOpenSSL: the NSS key-log line our client writes equals
// the one openssl s_server writes for the same connection.
func TestKeyLogMatchesOpenSSL(t *testing.T) {
	openssl := requirePeer(t, "openssl", "openssl")
	for _, s := range []suiteCase{peerSuites[1], peerSuites[3]} {
		t.Run(s.openssl, func(t *testing.T) {
			keylog := filepath.Join(t.TempDir(), "openssl.keys")
			port := freePort(t)
			srv := startPeer(t, nil, openssl, opensslServerArgs(port, s, identity, "-quiet", "-keylogfile", keylog)...)
			waitListening(t, srv, port)
			var ours bytes.Buffer
			cfg := clientConfig(s.id, identity, psk)
			cfg.KeyLogWriter = &ours
			c, err := dial(t, port, cfg)
			if err != nil {
				t.Fatal(err)
			}
			exchange(t, c, []byte("ping"), nil)
			c.CloseWrite()
			expectEOF(t, c)
			srv.wait(t, 10*time.Second)
			theirs, err := os.ReadFile(keylog)
			if err != nil {
				t.Fatal(err)
			}
			line := func(b []byte) string {
				for _, l := range strings.Split(string(b), "\n") {
					if strings.HasPrefix(l, "CLIENT_RANDOM ") {
						return l
					}
				}
				return ""
			}
			if line(ours.Bytes()) == "" || line(ours.Bytes()) != line(theirs) {
				t.Fatalf("key log lines differ:\nours:    %q\nopenssl: %q", ours.String(), theirs)
			}
		})
	}
}
