package main

import (
	"bytes"
	"strings"
	"testing"
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
