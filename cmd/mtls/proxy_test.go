package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/milagro-go/milagro/internal/testport"
)

func TestProxyFlagsUnique(t *testing.T) {
	for _, server := range []bool{true, false} {
		seen := map[string]bool{}
		for _, f := range proxyFlags(server) {
			for _, n := range f.Names() {
				if seen[n] {
					t.Errorf("server=%v: flag --%s defined twice", server, n)
				}
				seen[n] = true
			}
		}
		want := []string{"listen", "target", "status", "log-format", "shutdown-timeout", "max-conns",
			"handshake-timeout", "idle-timeout", "connect-timeout", "psk-identity", "psk"}
		if server {
			want = append(want, "allow", "allow-prefix", "allow-file", "allow-all", "proxy-protocol", "http-identity-header", "psk-file")
		}
		for _, n := range want {
			if !seen[n] {
				t.Errorf("server=%v: missing --%s", server, n)
			}
		}
		if !server && seen["allow-all"] {
			t.Error("client mode has ACL flags")
		}
	}
}

func TestClientListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		":8080":       "127.0.0.1:8080",
		"127.0.0.1:1": "127.0.0.1:1",
		"[::1]:2":     "[::1]:2",
		"0.0.0.0:3":   "0.0.0.0:3",
		"localhost:4": "localhost:4",
	} {
		if got, err := clientListenAddr(in); err != nil || got != want {
			t.Errorf("clientListenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := clientListenAddr("8080"); err == nil {
		t.Error("clientListenAddr accepted a bare port without a colon")
	}
}

func TestProxyArgErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mtls", "proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--psk-identity", "a", "--psk", testPSK},
			"mtls proxy server: no access control configured: give --allow, --allow-prefix or --allow-file, or --allow-all"},
		{[]string{"mtls", "proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--psk-identity", "a", "--psk", testPSK, "--allow-all", "--allow", "b"},
			"cannot be combined"},
		{[]string{"mtls", "proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--psk-identity", "a", "--psk", testPSK, "--allow-prefix", ""},
			"empty entry"},
		{[]string{"mtls", "proxy", "server", "--listen", "127.0.0.1:0", "--target", "nohostport", "--psk-identity", "a", "--psk", testPSK, "--allow-all"},
			"invalid --target"},
		{[]string{"mtls", "proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--psk-identity", "a", "--psk", testPSK, "--allow-all", "--http-identity-header", "Bad Name"},
			"invalid --http-identity-header"},
		{[]string{"mtls", "proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--psk-identity", "a", "--psk", testPSK, "--allow-all", "--http-identity-header", "X-Id", "--target-protocol", "h3"},
			"invalid --target-protocol"},
		{[]string{"mtls", "proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--psk-identity", "a", "--psk", testPSK, "--allow-all", "--target-protocol", "h2c"},
			"--target-protocol applies to HTTP identity mode"},
		{[]string{"mtls", "proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--psk-identity", "a", "--psk", testPSK, "--allow-all", "--http-identity-header", "X-Id", "--http-allow-upgrade", "h2c"},
			"invalid --http-allow-upgrade"},
		{[]string{"mtls", "proxy", "client", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--psk-identity", "a", "--psk", testPSK, "--alpn", ""},
			"invalid --alpn"},
		{[]string{"mtls", "proxy", "client", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1"},
			"mtls proxy client: no credentials"},
		{[]string{"mtls", "proxy", "client", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--psk-identity", "a", "--psk", testPSK, "--max-conns", "-1"},
			"invalid --max-conns"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, strings.NewReader(""), &out, &errb)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", tc.args[1:], code)
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: stderr %q does not contain %q", tc.args[1:], errb.String(), tc.want)
		}
	}
}

// spareAddr returns a loopback (or, with host "0.0.0.0", wildcard) address
// with a port that was free a moment ago on network "tcp" or "udp".
func spareAddr(t *testing.T, network, host string) string {
	t.Helper()
	return testport.Addr(t, network, host)
}

// bindable reports whether addr can be bound again: a proxy that refused
// to start must have closed its listener.
func bindable(network, addr string) error {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err == nil {
			pc.Close()
		}
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
	}
	return err
}

// TestProxyRulesBothTransports: TCP and --dtls share one runner, so every
// start-up refusal holds for both, and a refused start leaves no listener
// bound.
func TestProxyRulesBothTransports(t *testing.T) {
	for _, tr := range []struct {
		name, network string
		flags         []string
	}{
		{"tcp", "tcp", nil},
		{"dtls", "udp", []string{"--dtls"}},
	} {
		// A UDP service has no UNIX socket address here.
		if tr.name == "dtls" {
			code, _, errOut := runIn("proxy", "server", "--dtls", "--psk-identity", "a", "--psk", testPSK, "--allow-all",
				"--listen", "127.0.0.1:0", "--target", "unix:/tmp/x.sock")
			if code != 1 || !strings.Contains(errOut, "a UNIX socket does not apply to --dtls") {
				t.Errorf("--dtls --target unix:/tmp/x.sock: exit %d:\n%s", code, errOut)
			}
		}
		t.Run(tr.name, func(t *testing.T) {
			creds := append([]string{"--psk-identity", "a", "--psk", testPSK}, tr.flags...)
			server := func(args ...string) []string {
				return append(append([]string{"proxy", "server"}, args...), creds...)
			}
			client := func(args ...string) []string {
				return append(append([]string{"proxy", "client"}, args...), creds...)
			}
			for _, tc := range []struct {
				args []string
				want string
			}{
				{server("--listen", "127.0.0.1:0", "--target", "10.1.2.3:80", "--allow-all"), `refusing --target "10.1.2.3:80"`},
				{server("--listen", "127.0.0.1:0", "--target", "nohostport", "--allow-all"), "invalid --target"},
				{server("--listen", "127.0.0.1:0", "--target", "127.0.0.1:1"), "no access control configured"},
				{server("--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--allow-all", "--max-conns", "-1"), "invalid --max-conns: must not be negative"},
				{client("--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--max-conns", "-1"), "invalid --max-conns: must not be negative"},
				{client("--listen", "8080", "--target", "127.0.0.1:1"), "invalid --listen"},
				{server("--listen", "127.0.0.1:0", "--target", "unix:", "--allow-all"), `invalid --target "unix:"`},
			} {
				code, _, errOut := runIn(tc.args...)
				if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "proxy listening") {
					t.Errorf("%v: exit %d, want 1 and %q in:\n%s", tc.args, code, tc.want, errOut)
				}
			}

			// A client-mode listener beyond loopback is refused once bound
			// (a systemd-passed socket is checked too), and closed again.
			listen := spareAddr(t, tr.network, "0.0.0.0")
			code, _, errOut := runIn(client("--listen", listen, "--target", "127.0.0.1:1")...)
			if code != 1 || !strings.Contains(errOut, "refusing --listen") || !strings.Contains(errOut, "--unsafe-listen") {
				t.Errorf("client --listen %s: exit %d:\n%s", listen, code, errOut)
			}
			if err := bindable(tr.network, listen); err != nil {
				t.Errorf("client --listen %s still bound after the refusal: %v", listen, err)
			}

			// --status that cannot listen fails start-up, and the proxy's
			// own listener is closed again.
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			for _, args := range [][]string{
				server("--target", "127.0.0.1:1", "--allow-all", "--status", busy.Addr().String()),
				client("--target", "127.0.0.1:1", "--status", busy.Addr().String()),
			} {
				listen := spareAddr(t, tr.network, "127.0.0.1")
				args = append(args, "--listen", listen)
				code, _, errOut := runIn(args...)
				if code != 1 || !strings.Contains(errOut, "--status") {
					t.Errorf("%v: exit %d:\n%s", args, code, errOut)
				}
				if err := bindable(tr.network, listen); err != nil {
					t.Errorf("%v: --listen %s still bound after the failed start: %v", args, listen, err)
				}
			}
		})
	}
}
