package interop

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildCLI builds cmd/mtls into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go tool not in PATH")
	}
	bin := filepath.Join(t.TempDir(), "mtls")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/milagro-go/milagro/cmd/mtls")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/mtls: %v\n%s", err, out)
	}
	return bin
}

// TestCLIWithOpenSSL drives the built mtls binary against openssl:
// `mtls client` ↔ `openssl s_server` and `openssl s_client` ↔ `mtls server`.
func TestCLIWithOpenSSL(t *testing.T) {
	openssl := requirePeer(t, "openssl", "openssl")
	mtlsBin := buildCLI(t)
	const size = 64 << 10

	for _, s := range []suiteCase{peerSuites[0], peerSuites[3]} {
		t.Run("mtls-client-to-s_server/"+s.openssl, func(t *testing.T) {
			toServer, toClient := randomPayload(t, size), randomPayload(t, size)
			port := freePort(t)
			srv := startPeer(t, nil, openssl, opensslServerArgs(port, s, identity, "-quiet")...)
			go srv.stdin.Write(toClient)
			waitListening(t, srv, port)

			cli := startPeer(t, []string{"MTLS_PSK=" + pskHex}, mtlsBin, "client", "--connect", "127.0.0.1:"+strconv.Itoa(port),
				"--psk-identity", identity, "--suites", s.openssl)
			go cli.stdin.Write(toServer)
			want := "suite=" + s.name + " peer= psk_hint=\"" + hint + "\"\n"
			if !cli.stdout.waitFor(ioTimeout, func(b []byte) bool { return len(b) >= len(toClient) }) {
				t.Fatalf("mtls client printed %d of %d bytes", len(cli.stdout.Bytes()), len(toClient))
			}
			if !bytes.Equal(cli.stdout.Bytes(), toClient) {
				t.Fatalf("mtls client printed other bytes than s_server sent")
			}
			cli.stdin.Close() // close_notify; s_server answers and exits; the client exits
			if err := cli.wait(t, 10*time.Second); err != nil {
				t.Fatalf("mtls client: %v", err)
			}
			if got := cli.stderr.String(); got != want {
				t.Fatalf("mtls client stderr = %q, want exactly %q", got, want)
			}
			if err := srv.wait(t, 10*time.Second); err != nil {
				t.Fatalf("s_server: %v", err)
			}
			if !bytes.Equal(srv.stdout.Bytes(), toServer) {
				t.Fatalf("s_server received %d bytes that differ from the %d sent", len(srv.stdout.Bytes()), len(toServer))
			}
		})

		t.Run("s_client-to-mtls-server/"+s.openssl, func(t *testing.T) {
			data := randomPayload(t, size)
			srv := startPeer(t, nil, mtlsBin, "server", "--listen", "127.0.0.1:0", "--once",
				"--psk-identity", identity, "--psk", pskHex, "--psk-hint", hint, "--suites", s.name)
			addrRE := regexp.MustCompile(`msg=listening addr=127\.0\.0\.1:(\d+)`)
			if !srv.waitOutput("msg=listening", 10*time.Second) {
				t.Fatalf("mtls server did not start:\n%s", srv.output())
			}
			m := addrRE.FindStringSubmatch(srv.stderr.String())
			if m == nil {
				t.Fatalf("no listening address in:\n%s", srv.stderr.String())
			}
			port, _ := strconv.Atoi(m[1])
			cli := startPeer(t, nil, openssl, opensslClientArgs(port, s, identity, pskHex)...)
			go cli.stdin.Write(data)
			if !cli.stdout.waitFor(ioTimeout, func(b []byte) bool { return len(b) >= len(data) }) {
				t.Fatalf("s_client got %d of %d echoed bytes", len(cli.stdout.Bytes()), len(data))
			}
			if !bytes.Equal(cli.stdout.Bytes(), data) {
				t.Fatalf("the echo differs from what s_client sent")
			}
			cli.stdin.Close()
			if err := cli.wait(t, 10*time.Second); err != nil {
				t.Fatalf("s_client: %v", err)
			}
			if err := srv.wait(t, 10*time.Second); err != nil {
				t.Fatalf("mtls server --once: %v\n%s", err, srv.stderr.String())
			}
			log := srv.stderr.String()
			for _, w := range []string{"msg=connection", "peer=" + identity, "suite=" + s.name,
				"in=" + strconv.Itoa(size), "out=" + strconv.Itoa(size)} {
				if !strings.Contains(log, w) {
					t.Fatalf("mtls server log lacks %q:\n%s", w, log)
				}
			}
		})
	}

	t.Run("mtls-client-wrong-identity", func(t *testing.T) {
		srv := startPeer(t, nil, mtlsBin, "server", "--listen", "127.0.0.1:0", "--once",
			"--psk-identity", identity, "--psk", pskHex)
		if !srv.waitOutput("msg=listening", 10*time.Second) {
			t.Fatalf("mtls server did not start:\n%s", srv.output())
		}
		m := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(srv.stderr.String())
		if m == nil {
			t.Fatalf("no listening address in:\n%s", srv.stderr.String())
		}
		// The key from the environment (no warning about a secret flag).
		cli := startPeer(t, []string{"MTLS_PSK=" + pskHex}, mtlsBin, "client", "--connect", m[1], "--psk-identity", "intruder")
		err := cli.wait(t, 10*time.Second)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("mtls client: %v, want exit status 1", err)
		}
		want := "mtls client: handshake failed: remote error: unknown_psk_identity\n"
		if got := cli.stderr.String(); got != want {
			t.Fatalf("mtls client stderr = %q, want %q", got, want)
		}
		if err := srv.wait(t, 10*time.Second); err == nil {
			t.Fatalf("mtls server --once exited 0 after a failed handshake")
		}
		if !strings.Contains(srv.stderr.String(), "mtls server: handshake failed: local error: unknown_psk_identity") {
			t.Fatalf("mtls server stderr:\n%s", srv.stderr.String())
		}
	})
}
