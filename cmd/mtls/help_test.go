package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dta/dtawire"
)

// commandPaths lists every command as its words after "mtls".
func commandPaths(cmds []*cli.Command, prefix []string) [][]string {
	var out [][]string
	for _, c := range cmds {
		if c.Name == "help" {
			continue
		}
		p := append(append([]string(nil), prefix...), c.Name)
		out = append(out, p)
		out = append(out, commandPaths(c.Subcommands, p)...)
	}
	return out
}

// --help of every command: one group per topic, a name for every value
// (DURATION, N, …, never "value"), and a usage line naming the command.
func TestHelpEveryCommand(t *testing.T) {
	newApp(nil, nil, nil) // registers and prepares the commands
	groupRE := regexp.MustCompile(`(?m)^   (\S[^\n]*)\n\n   --`)
	paths := commandPaths(commands, nil)
	if len(paths) < 20 {
		t.Fatalf("only %d commands found", len(paths))
	}
	for _, p := range paths {
		// A process per command: urfave/cli keeps state across runs of an app.
		help, errOut, code := mtlsRun(t, "", append(p, "--help")...)
		if code != 0 {
			t.Fatalf("mtls %s --help: exit %d: %s", strings.Join(p, " "), code, errOut)
		}
		name := "mtls " + strings.Join(p, " ")
		if regexp.MustCompile(`--\S+ value\b`).MatchString(help) {
			t.Errorf("%s --help shows a flag taking \"value\":\n%s", name, help)
		}
		seen := map[string]string{}
		for _, m := range groupRE.FindAllStringSubmatch(help, -1) {
			g := m[1]
			if prev, ok := seen[strings.ToLower(g)]; ok {
				t.Errorf("%s --help: groups %q and %q are one topic", name, prev, g)
			}
			seen[strings.ToLower(g)] = g
		}
		if _, ok := seen["proxy"]; ok && strings.Contains(help, "   proxy\n\n   --log-format") {
			t.Errorf("%s --help: --log-format is under proxy, not logging", name)
		}
		if i := strings.Index(help, "USAGE:\n   "); i >= 0 {
			usage := help[i+len("USAGE:\n   "):]
			if !strings.HasPrefix(usage, name+" ") && !strings.HasPrefix(usage, name+"\n") {
				t.Errorf("%s --help: usage line %q does not name the command", name, strings.SplitN(usage, "\n", 2)[0])
			}
		}
	}
}

// Usage errors print the command's own usage line, word for word.
func TestUsageLineGolden(t *testing.T) {
	for args, want := range map[string]string{
		"server --bogus": "mtls server: flag provided but not defined: -bogus\n" +
			"usage: mtls server [--listen ADDR] (--psk-identity ID --psk HEX | --psk-file FILE | --key server.key ... | --p2p-key FILE) [--allow ID ... | --allow-all] [options]\n" +
			"(mtls server --help for all options)\n",
		"client --bogus": "mtls client: flag provided but not defined: -bogus\n" +
			"usage: mtls client --connect HOST:PORT (--psk-identity ID --psk HEX | --psk-file FILE | --key FILE (--permit FILE | --renewal FILE) [--server-id ID] | --p2p-key FILE --server-id ID) [options]\n" +
			"(mtls client --help for all options)\n",
		"keys --bogus": "mtls keys: flag provided but not defined: -bogus\n" +
			"usage: mtls keys COMMAND [options]\n" +
			"(mtls keys --help for all options)\n",
	} {
		_, errOut, code := mtlsRun(t, "", strings.Fields(args)...)
		if code != exitUsage || errOut != want {
			t.Errorf("mtls %s: exit %d\n%s\nwant exit %d\n%s", args, code, errOut, exitUsage, want)
		}
	}
}

// keys show on a renewal file says what the file is and what it is for.
func TestKeysShowRenewalFile(t *testing.T) {
	dir := t.TempDir()
	ren := filepath.Join(dir, "alice.renewal")
	writeTestRenewal(t, ren, dtawire.KindClient, cliAlice, "127.0.0.1:7001", []string{"0123456789abcdef", "fedcba9876543210"})
	out := mustRun(t, "keys", "show", ren)
	want := ren + `: renewal file (not a key) of client "alice@example.com" for 2 D-TAs: 0123456789abcdef@127.0.0.1:7001,fedcba9876543210@127.0.0.1:7001; use it with --renewal ` + ren + ", or fetch permits with mtls keys renew --renewal " + ren + " --out-dir DIR\n"
	if out != want {
		t.Fatalf("keys show:\n%s\nwant:\n%s", out, want)
	}
	data, _ := os.ReadFile(ren)
	secret := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("a", 32))) // writeTestRenewal's
	if !strings.Contains(string(data), secret) || strings.Contains(out, secret[:8]) {
		t.Fatal("keys show printed a renewal secret")
	}
}

// mtls client --alpn / mtls server --alpn, as openssl's -alpn.
func TestClientALPN(t *testing.T) {
	_, addr := startServer(t, "--psk-identity", "a", "--psk", testPSK, "--alpn", "h2,http/1.1")
	_, errOut, code := mtlsRun(t, "x\n", "client", "--connect", addr, "--psk-identity", "a", "--psk", testPSK, "--alpn", "http/1.1,h2")
	if code != 0 || !strings.Contains(errOut, " alpn=h2") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mustFail(t, "x\n", []string{"client", "--connect", addr, "--psk-identity", "a", "--psk", testPSK, "--alpn", "spdy/3"}, "no_application_protocol")
	mustFail(t, "", []string{"client", "--connect", addr, "--psk-identity", "a", "--psk", testPSK, "--alpn", "h2,,x"}, "invalid --alpn")
}
