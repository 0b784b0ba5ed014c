package main

import (
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
)

// normalizeOutput replaces what changes from run to run (D-TA fingerprints,
// dates, times) in a command's output, for comparison with a golden text.
func normalizeOutput(s string) string {
	s = regexp.MustCompile(`\b[0-9a-f]{16}\b`).ReplaceAllString(s, "FP")
	s = regexp.MustCompile(`\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?`).ReplaceAllString(s, "DATE")
	return s
}

// TestRefusalHintsGolden: what a refused Milagro CS client prints, word for
// word. The server's alert says little by design; the client says what the
// refusal means and what to check, on lines of their own.
func TestRefusalHintsGolden(t *testing.T) {
	k := makeCLIKeys(t)
	var shares []string
	for _, n := range []string{"1", "2", "3"} {
		mustRun(t, "ta", "issue", "--master", k.f("dta"+n+".share"), "--kind", "server", "--id", "api.example.com", "--out", k.f("api."+n))
		shares = append(shares, k.f("api."+n))
	}
	mustRun(t, append([]string{"keys", "combine", "--out", k.f("api.key")}, shares...)...)

	def, defAddr := startServer(t, "--key", k.f("server.key")) // permits required: the default
	named, namedAddr := startServer(t, "--key", k.f("api.key"), "--permits", "optional")

	lockout := "  - lockout and access control: the server may not allow this identity, or may have locked it out after failed attempts (its log says which)\n"
	cases := []struct {
		name   string
		args   []string
		golden string
	}{
		{"no permit at a server that requires one", []string{"--connect", defAddr, "--key", k.f("alice.key")},
			"mtls client: handshake failed: remote error: access_denied\n" +
				"The server refused the Milagro CS proof. Things to check here:\n" +
				"  - time permit: none was sent, and servers require one by default: pass --permit FILE (from mtls keys renew) or --renewal FILE\n" +
				"  - key: combined from 3 D-TA(s) (FP,FP,FP); it must hold a share of every D-TA of the deployment\n" +
				lockout},
		{"wrong PIN", []string{"--connect", defAddr, "--key", k.f("alice.token"), "--pin", "4712", "--permit", k.f("alice-permit.key")},
			"mtls client: handshake failed: remote error: access_denied\n" +
				"The server refused the Milagro CS proof. Things to check here:\n" +
				"  - time permit: held for DATE; this machine's clock says DATE (UTC), day DATE\n" +
				"  - PIN: a wrong PIN for the PIN token fails exactly like this (and repeated failures lock the identity out for a while)\n" +
				"  - key: combined from 3 D-TA(s) (FP,FP,FP); it must hold a share of every D-TA of the deployment\n" +
				lockout},
		{"no --server-id at a server with only a named key", []string{"--connect", namedAddr, "--key", k.f("alice.key")},
			"mtls client: handshake failed: remote error: unrecognized_name\n" +
				"The server holds no key for the deployment-wide identity, which this client asked for (no --server-id).\n" +
				"  - pass --server-id NAME: the server identity its key was issued for (mtls keys show KEY on the server prints it)\n"},
		{"--server-id the server has no key for", []string{"--connect", namedAddr, "--key", k.f("alice.key"), "--server-id", "web.example.com"},
			"mtls client: handshake failed: remote error: unrecognized_name\n" +
				"The server holds no key for the server identity \"web.example.com\" that this client asked for (--server-id).\n" +
				"  - check --server-id: it must be an identity the server holds a key for (mtls keys show KEY on the server prints it)\n" +
				"  - or leave --server-id out if the server holds the deployment-wide key\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := mtlsRun(t, "", append([]string{"client"}, tc.args...)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, errOut)
			}
			if got := normalizeOutput(errOut); got != tc.golden {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, tc.golden)
			}
		})
	}
	// The client with a --server-id the server holds gets in.
	_, errOut, code := mtlsRun(t, "x\n", "client", "--connect", namedAddr, "--key", k.f("alice.key"), "--server-id", "api.example.com")
	if code != 0 || !strings.Contains(errOut, "peer=api.example.com") {
		t.Fatalf("exit %d: %s", code, errOut)
	}

	// A proxy client without a permit logs the same things to check.
	pc := startMTLS(t, nil, "proxy", "client", "--listen", "127.0.0.1:0", "--target", defAddr, "--key", k.f("alice.key"))
	m := addrRE.FindStringSubmatch(waitStderr(t, pc, "proxy listening"))
	if m == nil {
		t.Fatalf("no address in:\n%s", pc.stderr.String())
	}
	if c, err := net.Dial("tcp", m[1]); err == nil {
		c.Write([]byte("x"))
		io.Copy(io.Discard, c)
		c.Close()
	}
	waitStderr(t, pc, `check="The server refused the Milagro CS proof. time permit: none was sent, and servers require one by default: pass --permit FILE (from mtls keys renew) or --renewal FILE; key: combined from 3 D-TA(s)`)

	// The server that requires permits says the same in its log.
	for _, s := range []*proc{def, named} {
		s.cmd.Process.Signal(os.Interrupt)
		s.wait(t)
	}
	if log := def.stderr.String(); !strings.Contains(log, "sent no time permit, which this server requires: the client must send today's (mtls: --permit FILE or --renewal FILE)") {
		t.Errorf("server log lacks the fix for a client without a permit:\n%s", log)
	}
}
