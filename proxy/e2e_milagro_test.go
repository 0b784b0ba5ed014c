package proxy

import (
	"net"
	"os/exec"
	"path/filepath"
	"testing"
)

// milagroKeys runs the binary's trust-authority commands (two D-TAs) and
// returns combined key files: the CS server secret and CS client keys.
func milagroKeys(t testing.TB, ids ...string) (server string, clients map[string]string) {
	t.Helper()
	bin := needBinary(t)
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mtls %v: %v\n%s", args, err, out)
		}
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	dtas := []string{"dta1", "dta2"}
	for _, d := range dtas {
		run("ta", "init", "--out", p(d+".share"))
	}
	combine := func(out string, kind, id string) {
		var shares []string
		for _, d := range dtas {
			args := []string{"ta", "issue", "--master", p(d + ".share"), "--kind", kind, "--out", p(d + "." + out)}
			if id != "" {
				args = append(args, "--id", id)
			}
			run(args...)
			shares = append(shares, p(d+"."+out))
		}
		run(append([]string{"keys", "combine", "--out", p(out)}, shares...)...)
	}
	combine("server.key", "server", "")
	combine("api.key", "server", "api.example.com")
	combine("web.key", "server", "web.example.com")
	clients = map[string]string{}
	for _, id := range ids {
		combine(id+".key", "client", id)
		clients[id] = p(id + ".key")
	}
	return p("server.key"), clients
}

// TestE2EMilagroCS runs the proxy pair with Milagro CS keys instead of PSKs:
// the identity the ACL sees is the CS client identity.
func TestE2EMilagroCS(t *testing.T) {
	server, clients := milagroKeys(t, "alice@example.com", "mallory@example.com")
	up := startUpstream(t, nil)
	srv := startProc(t, "--log-format", "json", "proxy", "server", "--listen", "127.0.0.1:0", "--target", up.addr(),
		"--key", server, "--allow", "alice@example.com", "--permits", "optional")
	saddr := srv.waitLog(t, "proxy listening")["addr"].(string)
	start := func(id string) string {
		p := startProc(t, "--log-format", "json", "proxy", "client", "--listen", "127.0.0.1:0", "--target", saddr, "--key", clients[id])
		return p.waitLog(t, "proxy listening")["addr"].(string)
	}
	alice, mallory := start("alice@example.com"), start("mallory@example.com")

	c, err := net.Dial("tcp", alice)
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, []byte("milagro")); string(got) != "milagro" {
		t.Fatalf("alice: %q", got)
	}
	c.Close()
	srv.waitLog(t, "connection closed", "identity", "alice@example.com")

	b, _ := dialRefused(t, mallory, nil)
	if len(b) != 0 {
		t.Fatalf("mallory read %q", b)
	}
	srv.waitLog(t, "access denied", "identity", "mallory@example.com")
	if n := up.count.Load(); n != 1 {
		t.Fatalf("upstream saw %d connections, want 1", n)
	}
}

// TestE2EMilagroServerIdentities: one proxy port serves two CS server
// identities (--key twice); each client names the server it means
// (--server-id) and the right key answers; an identity the proxy holds no
// key for is refused (unrecognized_name) and never reaches the target.
func TestE2EMilagroServerIdentities(t *testing.T) {
	server, clients := milagroKeys(t, "alice@example.com")
	dir := filepath.Dir(server)
	up := startUpstream(t, nil)
	srv := startProc(t, "--log-format", "json", "proxy", "server", "--listen", "127.0.0.1:0", "--target", up.addr(),
		"--key", filepath.Join(dir, "api.key"), "--key", filepath.Join(dir, "web.key"), "--allow", "alice@example.com", "--permits", "optional")
	saddr := srv.waitLog(t, "proxy listening")["addr"].(string)
	for _, sid := range []string{"api.example.com", "web.example.com"} {
		p := startProc(t, "--log-format", "json", "proxy", "client", "--listen", "127.0.0.1:0", "--target", saddr,
			"--key", clients["alice@example.com"], "--server-id", sid)
		addr := p.waitLog(t, "proxy listening")["addr"].(string)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := roundTrip(t, c, []byte(sid)); string(got) != sid {
			t.Fatalf("%s: %q", sid, got)
		}
		c.Close()
	}
	before := up.count.Load()
	p := startProc(t, "--log-format", "json", "proxy", "client", "--listen", "127.0.0.1:0", "--target", saddr,
		"--key", clients["alice@example.com"], "--server-id", "db.example.com")
	addr := p.waitLog(t, "proxy listening")["addr"].(string)
	if b, _ := dialRefused(t, addr, nil); len(b) != 0 {
		t.Fatalf("unknown server identity: read %q", b)
	}
	p.waitLog(t, "cannot open mtls connection to target; closing")
	srv.waitLog(t, "handshake failed")
	if up.count.Load() != before {
		t.Fatal("a connection for an unknown server identity reached the target")
	}
}
