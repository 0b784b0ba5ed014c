package main

import (
	"os"
	"strings"
	"testing"
)

// mtls server takes --allow-all like the proxy, and refuses it with --allow.
func TestServerAllowAll(t *testing.T) {
	mustFail(t, "", []string{"server", "--listen", "127.0.0.1:0", "--psk-identity", "a", "--psk", testPSK, "--allow-all", "--allow", "a"},
		"--allow-all cannot be combined with --allow")
	// --allow is checked by the proxy's ACL, whose entry rules it shares.
	mustFail(t, "", []string{"server", "--listen", "127.0.0.1:0", "--psk-identity", "a", "--psk", testPSK, "--allow", "a\x01b"},
		"invalid --allow", "control character")
	srv, addr := startServer(t, "--psk-identity", "a", "--psk", testPSK, "--allow-all")
	if _, errOut, code := mtlsRun(t, "x\n", "client", "--connect", addr, "--psk-identity", "a", "--psk", testPSK); code != 0 {
		t.Fatalf("client: exit %d: %s", code, errOut)
	}
	srv.cmd.Process.Signal(os.Interrupt)
	srv.wait(t)
	if log := srv.stderr.String(); !strings.Contains(log, `msg="access control" acl="every authenticated identity"`) {
		t.Fatalf("the server does not log its access control:\n%s", log)
	}
}
