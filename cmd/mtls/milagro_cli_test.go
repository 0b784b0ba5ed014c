package main

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/mtls"
)

const (
	cliAlice = "alice@example.com"
	cliPIN   = "4711"
)

// mtlsRun runs the mtls binary (built by TestMain) to completion.
func mtlsRun(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	p := startMTLS(t, []byte(stdin), args...)
	if err := p.wait(t); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("mtls %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return p.stdout.String(), p.stderr.String(), code
}

// mustRun runs an mtls command that has to succeed and returns its stdout.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := mtlsRun(t, "", args...)
	if code != 0 {
		t.Fatalf("mtls %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// mustFail runs an mtls command that has to exit 1 with a one-line error
// containing every string of want.
func mustFail(t *testing.T, stdin string, args []string, want ...string) string {
	t.Helper()
	_, errOut, code := mtlsRun(t, stdin, args...)
	if code != 1 {
		t.Fatalf("mtls %s: exit %d, want 1\n%s", strings.Join(args, " "), code, errOut)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Fatalf("mtls %s: stderr %q lacks %q", strings.Join(args, " "), errOut, w)
		}
	}
	return errOut
}

// cliKeys is a deployment made with the CLI as a user would: three D-TAs,
// shares of every key from each, combined keys, a PIN token.
type cliKeys struct{ dir string }

func (k cliKeys) f(name string) string { return filepath.Join(k.dir, name) }

func makeCLIKeys(t *testing.T) cliKeys {
	t.Helper()
	k := cliKeys{t.TempDir()}
	today := time.Now().UTC().Format(time.DateOnly)
	for i := 1; i <= 3; i++ {
		n := string(rune('0' + i))
		m := k.f("dta" + n + ".share")
		out := mustRun(t, "ta", "init", "--out", m)
		if want := "wrote " + m + ": MILAGRO MASTER SHARE fingerprint="; !strings.HasPrefix(out, want) || len(out) != len(want)+17 {
			t.Fatalf("ta init printed %q, want %q + 16 hex digits", out, want)
		}
		mustRun(t, "ta", "issue", "--master", m, "--kind", "client", "--id", cliAlice, "--out", k.f("alice."+n))
		mustRun(t, "ta", "issue", "--master", m, "--kind", "client", "--id", "bob", "--out", k.f("bob."+n))
		mustRun(t, "ta", "issue", "--master", m, "--kind", "server", "--out", k.f("server."+n))
		mustRun(t, "ta", "issue", "--master", m, "--kind", "p2p", "--id", "node-a", "--out", k.f("node-a."+n))
		mustRun(t, "ta", "issue", "--master", m, "--kind", "p2p", "--id", "node-b", "--out", k.f("node-b."+n))
		mustRun(t, "ta", "permit", "--master", m, "--id", cliAlice, "--day", today, "--out", k.f("alice-permit."+n))
	}
	shares := func(name string) []string {
		return []string{k.f(name + ".1"), k.f(name + ".2"), k.f(name + ".3")}
	}
	for _, name := range []string{"alice", "server", "node-a", "node-b", "alice-permit"} {
		out := mustRun(t, append([]string{"keys", "combine", "--out", k.f(name + ".key")}, shares(name)...)...)
		if !strings.HasPrefix(out, "wrote "+k.f(name+".key")+": MILAGRO ") {
			t.Fatalf("keys combine printed %q", out)
		}
	}
	mustRun(t, "keys", "combine", "--out", k.f("alice-2of3.key"), k.f("alice.1"), k.f("alice.2"))
	mustRun(t, "keys", "combine", "--out", k.f("alice-permit-2of3.key"), k.f("alice-permit.1"), k.f("alice-permit.2"))
	mustRun(t, "keys", "pin", "--in", k.f("alice.key"), "--pin", cliPIN, "--out", k.f("alice.token"))
	return k
}

// TestMilagroCLIKeyCommands: ta and keys as a user runs them, and their
// refusals; no handshake involved.
func TestMilagroCLIKeyCommands(t *testing.T) {
	k := makeCLIKeys(t)
	today := time.Now().UTC().Format(time.DateOnly)

	// Every file is private and of the right kind; show prints no secret.
	want := map[string]string{
		"dta1.share":       "MILAGRO MASTER SHARE",
		"alice.key":        `MILAGRO CS CLIENT KEY identity="alice@example.com"`,
		"alice.token":      `MILAGRO PIN TOKEN identity="alice@example.com"`,
		"server.key":       "MILAGRO CS SERVER SECRET server_identity=(deployment-wide)",
		"node-a.key":       `MILAGRO P2P KEY identity="node-a"`,
		"alice-permit.key": `MILAGRO TIME PERMIT identity="alice@example.com" day=` + today,
	}
	for name, desc := range want {
		st, err := os.Stat(k.f(name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", name, st.Mode().Perm())
		}
		out := mustRun(t, "keys", "show", k.f(name))
		tail := " dtas="
		if name == "dta1.share" {
			tail = " fingerprint="
		}
		if !strings.HasPrefix(out, k.f(name)+": "+desc+tail) {
			t.Errorf("keys show %s = %q, want %q and its D-TA set", name, out, desc)
		}
		if name != "dta1.share" && strings.Count(out, ",") != 2 {
			t.Errorf("keys show %s = %q: want the three D-TAs", name, out)
		}
		data, _ := os.ReadFile(k.f(name))
		b, _ := pem.Decode(data)
		if b == nil {
			t.Fatalf("%s is not PEM", name)
		}
		body := base64.StdEncoding.EncodeToString(b.Bytes)
		if tail := body[len(body)-24:]; strings.Contains(out, tail) {
			t.Errorf("keys show %s printed part of the body", name)
		}
	}

	// Combining refuses mixed kinds, identities and days, the same share twice,
	// master shares and PIN tokens, with messages naming the files.
	mustFail(t, "", []string{"keys", "combine", "--out", k.f("x"), k.f("alice.1"), k.f("server.2"), k.f("alice.3")},
		"mtls keys combine: cannot combine different kinds of keys", k.f("alice.1")+" is a CS client key",
		k.f("server.2")+" is a CS server secret")
	mustFail(t, "", []string{"keys", "combine", "--out", k.f("x"), k.f("alice.1"), k.f("bob.2"), k.f("alice.3")},
		"cannot combine keys of different identities", `is for "alice@example.com"`, k.f("bob.2")+` is for "bob"`)
	mustFail(t, "", []string{"keys", "combine", "--out", k.f("x"), k.f("node-a.1"), k.f("node-b.2")},
		"cannot combine keys of different identities")
	mustRun(t, "ta", "permit", "--master", k.f("dta2.share"), "--id", cliAlice, "--day", "tomorrow", "--out", k.f("tomorrow.2"))
	mustFail(t, "", []string{"keys", "combine", "--out", k.f("x"), k.f("alice-permit.1"), k.f("tomorrow.2")},
		"cannot combine permits for different days")
	mustFail(t, "", []string{"keys", "combine", "--out", k.f("x"), k.f("alice.1"), k.f("alice.1")}, "are both from D-TA")
	// A second share from the same D-TA (issued again) is refused too.
	mustRun(t, "ta", "issue", "--master", k.f("dta1.share"), "--kind", "client", "--id", cliAlice, "--out", k.f("alice.1b"))
	mustFail(t, "", []string{"keys", "combine", "--out", k.f("x"), k.f("alice.1"), k.f("alice.1b"), k.f("alice.2")}, "are both from D-TA")
	mustFail(t, "", []string{"keys", "combine", "--out", k.f("x"), k.f("alice.key"), k.f("alice.3")}, "already a combined key")
	mustFail(t, "", []string{"keys", "combine", "--out", k.f("x"), k.f("dta1.share"), k.f("dta2.share")}, "master shares are never combined")
	// Permit shares from other D-TAs than the key's.
	mustFail(t, "", []string{"keys", "combine", "--out", k.f("x"), "--key", k.f("alice-2of3.key"), k.f("alice-permit.1"), k.f("alice-permit.2"), k.f("alice-permit.3")},
		"the permits come from D-TAs", "get a permit share from each of the key's D-TAs")
	mustRun(t, "keys", "combine", "--out", k.f("alice-permit-checked.key"), "--key", k.f("alice.token"), k.f("alice-permit.1"), k.f("alice-permit.2"), k.f("alice-permit.3"))
	// A share used as a key: the error says what to do.
	mustFail(t, "", []string{"client", "--connect", "127.0.0.1:1", "--key", k.f("alice.1")}, "is one D-TA's share", "mtls keys combine")
	mustFail(t, "", []string{"server", "--listen", "127.0.0.1:0", "--key", k.f("server.1")}, "is one D-TA's share")
	mustFail(t, "", []string{"keys", "pin", "--in", k.f("alice.key"), "--pin", "0", "--out", k.f("x")}, "invalid --pin", "1..99999999")
	if _, err := os.Stat(k.f("x")); err == nil {
		t.Fatal("a refused combine wrote its --out")
	}

	// Issuing and PIN checks.
	mustFail(t, "", []string{"ta", "issue", "--master", k.f("dta1.share"), "--kind", "client", "--out", k.f("x")}, "--kind client needs --id")
	mustFail(t, "", []string{"ta", "issue", "--master", k.f("dta1.share"), "--kind", "p2p", "--out", k.f("x")}, "--kind p2p needs --id")
	mustFail(t, "", []string{"ta", "issue", "--master", k.f("dta1.share"), "--kind", "nope", "--id", "a", "--out", k.f("x")}, "invalid --kind")
	mustFail(t, "", []string{"ta", "issue", "--master", k.f("alice.1"), "--kind", "server", "--out", k.f("x")},
		"file "+k.f("alice.1")+" holds a MILAGRO CS CLIENT KEY, want a MILAGRO MASTER SHARE")
	mustFail(t, "", []string{"ta", "permit", "--master", k.f("dta1.share"), "--id", "a", "--day", "22/11/2026", "--out", k.f("x")}, "invalid --day")
	mustFail(t, "", []string{"keys", "pin", "--in", k.f("alice.key"), "--pin", "123456789", "--out", k.f("x")}, "invalid --pin")
	mustFail(t, "", []string{"keys", "pin", "--in", k.f("node-a.key"), "--pin", "1", "--out", k.f("x")}, "holds a MILAGRO P2P KEY, want a MILAGRO CS CLIENT KEY")

	// --out never replaces a file unless --force is given.
	before, _ := os.ReadFile(k.f("dta1.share"))
	mustFail(t, "", []string{"ta", "init", "--out", k.f("dta1.share")}, "exists; give --force")
	if after, _ := os.ReadFile(k.f("dta1.share")); !bytes.Equal(before, after) {
		t.Fatal("ta init without --force changed an existing share")
	}
	mustRun(t, "ta", "init", "--force", "--out", k.f("dta1.share"))
	if after, _ := os.ReadFile(k.f("dta1.share")); bytes.Equal(before, after) {
		t.Fatal("ta init --force did not replace the share")
	}

	// Credential flags refuse the wrong kind of file before connecting.
	addr := "127.0.0.1:1" // never dialled: the flags fail first
	mustFail(t, "", []string{"client", "--connect", addr, "--key", k.f("server.key")},
		"mtls client: --key "+k.f("server.key")+" holds a MILAGRO CS SERVER SECRET; a client needs a MILAGRO CS CLIENT KEY or a MILAGRO PIN TOKEN")
	mustFail(t, "", []string{"client", "--connect", addr, "--key", k.f("alice.token")}, "is a PIN token: give its PIN with --pin")
	mustFail(t, "", []string{"client", "--connect", addr, "--key", k.f("alice.key"), "--pin", "1"}, "--pin given, but")
	mustFail(t, "", []string{"client", "--connect", addr, "--key", k.f("alice.key"), "--id", "bob"}, `--id "bob", but --key`)
	mustFail(t, "", []string{"client", "--connect", addr, "--key", k.f("alice.key"), "--permit", k.f("alice.key")},
		"is not a MILAGRO TIME PERMIT")
	mustFail(t, "", []string{"client", "--connect", addr, "--p2p-key", k.f("node-b.key")}, "--p2p-key needs --server-id")
	mustFail(t, "", []string{"server", "--listen", "127.0.0.1:0", "--key", k.f("alice.key")},
		"mtls server: --key "+k.f("alice.key")+" holds a MILAGRO CS CLIENT KEY; a server needs a MILAGRO CS SERVER SECRET")
	mustFail(t, "", []string{"server", "--listen", "127.0.0.1:0", "--p2p-key", k.f("node-a.key"), "--id", "node-b"}, `--id "node-b", but --p2p-key`)
	mustFail(t, "", []string{"server", "--listen", "127.0.0.1:0", "--require-permits"}, "--permits/--require-permits need --key")
	mustFail(t, "", []string{"server", "--listen", "127.0.0.1:0", "--key", k.f("server.key"), "--permits", "sometimes"}, "invalid --permits")
	mustFail(t, "", []string{"server", "--listen", "127.0.0.1:0", "--key", k.f("server.key"), "--key", k.f("server.key")}, "a second key for server identity")
	os.Chmod(k.f("alice.key"), 0o644)
	mustFail(t, "", []string{"client", "--connect", addr, "--key", k.f("alice.key")}, "mode 0644", "chmod 600 "+k.f("alice.key"))
}

// TestMilagroCLIFlagsInProxy: the proxy commands get the Milagro flags
// without a duplicate --allow, and --allow stays the proxy ACL's business
// there, while `mtls server --allow` checks identities itself.
func TestMilagroCLIFlagsInProxy(t *testing.T) {
	for _, args := range [][]string{{"proxy", "server", "--help"}, {"proxy", "client", "--help"}, {"server", "--help"}, {"client", "--help"}} {
		out := mustRun(t, args...)
		for _, f := range []string{"--key FILE", "--p2p-key FILE"} {
			if !strings.Contains(out, f) {
				t.Errorf("mtls %s lacks %s", strings.Join(args, " "), f)
			}
		}
		isServer := strings.Contains(strings.Join(args, " "), "server")
		if n := strings.Count(out, "\n   --allow ID"); isServer != (n == 1) || n > 1 {
			t.Errorf("mtls %s shows --allow %d times", strings.Join(args, " "), n)
		}
	}
	// creds_test.go's hook test leaves the hooks nil behind it: set them again.
	setMilagroHooks()
	var verify func(string) error
	var applied bool
	app := &cli.App{
		Name: "mtls", Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	action := func(c *cli.Context) error {
		cfg := &mtls.Config{}
		applied = true
		if err := applyMilagroFlags(c, cfg, true); err != nil {
			return err
		}
		verify = cfg.VerifyPeerIdentity
		return nil
	}
	app.Commands = []*cli.Command{
		{Name: "server", Flags: credentialFlags(true), Action: action},
		{Name: "proxy", Subcommands: []*cli.Command{{Name: "server", Flags: proxyFlags(true), Action: action}}},
	}
	if err := app.Run([]string{"mtls", "server", "--allow", "bob"}); err != nil || !applied {
		t.Fatal(err)
	}
	if verify == nil || verify("bob") != nil || verify(cliAlice) == nil {
		t.Fatal("server --allow bob: VerifyPeerIdentity does not admit exactly bob")
	}
	verify, applied = nil, false
	if err := app.Run([]string{"mtls", "proxy", "server", "--listen", "x", "--target", "y", "--allow", "bob"}); err != nil || !applied {
		t.Fatal(err)
	}
	if verify != nil {
		t.Fatal("proxy server --allow: applyMilagro set VerifyPeerIdentity (the proxy ACL does it)")
	}
}

var (
	csLineRE  = regexp.MustCompile(`^suite=TLS_MILAGRO_CS_WITH_\S+ peer=\n$`)
	p2pLineRE = regexp.MustCompile(`^suite=TLS_MILAGRO_P2P_WITH_\S+ peer=node-a\n$`)
)

// TestMilagroCLIHandshakes: `mtls server` and `mtls client` with the keys
// made by the CLI: Milagro CS with a PIN token and a permit against a
// server that requires permits, P2P both ways, and the refusals.
func TestMilagroCLIHandshakes(t *testing.T) {
	k := makeCLIKeys(t)
	srv, addr := startServer(t, "--key", k.f("server.key"), "--require-permits", "--p2p-key", k.f("node-a.key"), "--id", "node-a")
	onlyBob, bobAddr := startServer(t, "--key", k.f("server.key"), "--p2p-key", k.f("node-a.key"), "--allow", "bob", "--permits", "optional")

	type run struct {
		name  string
		args  []string
		line  *regexp.Regexp // stderr on success
		fails []string       // or: the error must contain these
	}
	runs := []run{
		{"CS with PIN token and permit", []string{"--connect", addr, "--key", k.f("alice.token"), "--pin", cliPIN, "--permit", k.f("alice-permit.key"), "--id", cliAlice}, csLineRE, nil},
		{"CS with the full key and permit", []string{"--connect", addr, "--key", k.f("alice.key"), "--permit", k.f("alice-permit.key")}, csLineRE, nil},
		{"P2P", []string{"--connect", addr, "--p2p-key", k.f("node-b.key"), "--server-id", "node-a"}, p2pLineRE, nil},
		{"CS without the required permit", []string{"--connect", addr, "--key", k.f("alice.key")}, nil, []string{"mtls client: handshake failed", "access_denied"}},
		{"CS key from 2 of 3 D-TAs", []string{"--connect", addr, "--key", k.f("alice-2of3.key"), "--permit", k.f("alice-permit-2of3.key")}, nil, []string{"mtls client: handshake failed", "access_denied"}},
		{"CS wrong PIN", []string{"--connect", addr, "--key", k.f("alice.token"), "--pin", "4712", "--permit", k.f("alice-permit.key")}, nil, []string{"mtls client: handshake failed", "access_denied"}},
		{"P2P unexpected server", []string{"--connect", addr, "--p2p-key", k.f("node-b.key"), "--server-id", "node-c"}, nil, []string{"mtls client: handshake failed", "access_denied"}},
		{"--allow bob denies alice", []string{"--connect", bobAddr, "--key", k.f("alice.key")}, nil, []string{"mtls client: handshake failed", "access_denied"}},
		{"--allow bob denies node-b", []string{"--connect", bobAddr, "--p2p-key", k.f("node-b.key"), "--server-id", "node-a"}, nil, []string{"mtls client: handshake failed", "access_denied"}},
	}
	procs := make([]*proc, len(runs))
	inputs := make([]string, len(runs))
	for i, r := range runs {
		inputs[i] = strings.Repeat("milagro "+r.name+"\n", 100+i)
		procs[i] = startMTLS(t, []byte(inputs[i]), append([]string{"client"}, r.args...)...)
	}
	for i, r := range runs {
		p := procs[i]
		err := p.wait(t)
		stderr := p.stderr.String()
		if r.line != nil {
			if err != nil {
				t.Errorf("%s: %v\n%s", r.name, err, stderr)
				continue
			}
			if !r.line.MatchString(stderr) {
				t.Errorf("%s: stderr %q, want %v", r.name, stderr, r.line)
			}
			if p.stdout.String() != inputs[i] {
				t.Errorf("%s: echo differs: got %d bytes, want %d", r.name, len(p.stdout.String()), len(inputs[i]))
			}
			continue
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%s: %v, want exit status 1\n%s", r.name, err, stderr)
			continue
		}
		for _, w := range r.fails {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q lacks %q", r.name, stderr, w)
			}
		}
		// The error comes first, on one line; a refused CS client then
		// lists what it can check locally.
		first, rest, _ := strings.Cut(stderr, "\n")
		if !strings.Contains(first, "mtls client: handshake failed") {
			t.Errorf("%s: want the error on the first line, got %q", r.name, stderr)
		}
		if rest != "" && !strings.HasPrefix(rest, "The server refused the Milagro CS proof. Things to check here:\n  - ") {
			t.Errorf("%s: after the error: %q", r.name, rest)
		}
		if p.stdout.String() != "" {
			t.Errorf("%s: refused client printed %q", r.name, p.stdout.String())
		}
	}

	// The servers logged who connected.
	for _, s := range []*proc{srv, onlyBob} {
		s.cmd.Process.Signal(os.Interrupt)
		if err := s.wait(t); err != nil {
			t.Fatalf("server after SIGINT: %v", err)
		}
	}
	log := srv.stderr.String()
	if n := strings.Count(log, "peer="+cliAlice+" suite=TLS_MILAGRO_CS_"); n != 2 {
		t.Errorf("server logged %d CS connections of %s, want 2:\n%s", n, cliAlice, log)
	}
	if n := strings.Count(log, "peer=node-b suite=TLS_MILAGRO_P2P_"); n != 1 {
		t.Errorf("server logged %d P2P connections of node-b, want 1:\n%s", n, log)
	}
	if n := strings.Count(log, "level=WARN msg=connection"); n != 4 {
		t.Errorf("server logged %d failed handshakes, want 4:\n%s", n, log)
	}
	for _, id := range []string{cliAlice, "node-b"} {
		if !strings.Contains(onlyBob.stderr.String(), `access_denied`) || !strings.Contains(onlyBob.stderr.String(), `identity \"`+id+`\" denied: not in the allow list`) {
			t.Errorf("--allow bob server log lacks the denial of %s:\n%s", id, onlyBob.stderr.String())
		}
	}
}
