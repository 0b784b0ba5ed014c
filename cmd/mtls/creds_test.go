package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/mtls"
)

const testPSK = "00112233445566778899aabbccddeeff"

// parseCreds runs configFromFlags on args through a throwaway app.
func parseCreds(t *testing.T, server bool, args ...string) (*mtls.Config, error) {
	t.Helper()
	var cfg *mtls.Config
	var cfgErr error
	app := &cli.App{
		Name:      "mtls",
		Writer:    &bytes.Buffer{},
		ErrWriter: &bytes.Buffer{},
		Commands: []*cli.Command{{
			Name:  "x",
			Flags: credentialFlags(server),
			Action: func(c *cli.Context) error {
				cfg, cfgErr = configFromFlags(c, server)
				return nil
			},
		}},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	if err := app.Run(append([]string{"mtls", "x"}, args...)); err != nil {
		return nil, err
	}
	return cfg, cfgErr
}

func TestConfigFromFlagsClient(t *testing.T) {
	cfg, err := parseCreds(t, false, "--psk-identity", "client1", "--psk", testPSK,
		"--suites", "PSK-AES128-GCM-SHA256, TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256,psk_with_aes_256_gcm_sha384,0xCCAB,PSK-AES128-GCM-SHA256",
		"--handshake-timeout", "3s", "--allow-no-ems")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PSKIdentity != "client1" || len(cfg.PSK) != 16 || cfg.PSK[15] != 0xff {
		t.Fatalf("PSK identity/key = %q/%x", cfg.PSKIdentity, cfg.PSK)
	}
	want := []uint16{0x00A8, 0xCCAC, 0x00A9, 0xCCAB}
	if len(cfg.CipherSuites) != len(want) {
		t.Fatalf("suites = %04x, want %04x", cfg.CipherSuites, want)
	}
	for i := range want {
		if cfg.CipherSuites[i] != want[i] {
			t.Fatalf("suites = %04x, want %04x", cfg.CipherSuites, want)
		}
	}
	if cfg.HandshakeTimeout != 3*time.Second || !cfg.InsecureAllowNoEMS {
		t.Fatalf("timeout %v allowNoEMS %v", cfg.HandshakeTimeout, cfg.InsecureAllowNoEMS)
	}
	if cfg.GetServerPSK != nil {
		t.Fatal("client config has a server PSK callback")
	}
}

func TestConfigFromFlagsServer(t *testing.T) {
	dir := t.TempDir()
	pskFile := filepath.Join(dir, "psk.txt")
	os.WriteFile(pskFile, []byte("# comment\n\nalice:"+strings.Repeat("aa", 32)+"\nurn:x:bob:0x"+strings.Repeat("bb", 16)+"\n"), 0o600)
	keylog := filepath.Join(dir, "keys.log")
	cfg, err := parseCreds(t, true, "--psk-identity", "client1", "--psk", testPSK,
		"--psk-file", pskFile, "--psk-hint", "srvhint", "--keylog", keylog)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PSKIdentityHint != "srvhint" || cfg.KeyLogWriter == nil {
		t.Fatalf("hint %q keylog %v", cfg.PSKIdentityHint, cfg.KeyLogWriter)
	}
	if fi, err := os.Stat(keylog); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keylog file: %v %v", fi, err)
	}
	for id, want := range map[string]string{"client1": testPSK, "alice": strings.Repeat("aa", 32), "urn:x:bob": strings.Repeat("bb", 16)} {
		k, err := cfg.GetServerPSK(id)
		if err != nil {
			t.Fatalf("identity %q: %v", id, err)
		}
		if got := hex.EncodeToString(k); got != want {
			t.Fatalf("identity %q: key %s, want %s", id, got, want)
		}
	}
	if _, err := cfg.GetServerPSK("mallory"); err == nil {
		t.Fatal("unknown identity accepted")
	}
}

func TestConfigFromFlagsErrors(t *testing.T) {
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.txt")
	os.WriteFile(badFile, []byte("alice:zz\n"), 0o600)
	noColon := filepath.Join(dir, "nocolon.txt")
	os.WriteFile(noColon, []byte("alice\n"), 0o600)
	for _, tc := range []struct {
		name   string
		server bool
		args   []string
		want   string
	}{
		{"bad suite", false, []string{"--psk-identity", "a", "--psk", testPSK, "--suites", "PSK-AES128-GCM-SHA256,RC4-MD5"},
			`unknown cipher suite "RC4-MD5" in --suites; valid names: TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256`},
		{"empty suites", false, []string{"--psk-identity", "a", "--psk", testPSK, "--suites", ","}, "--suites is empty"},
		{"bad hex", false, []string{"--psk-identity", "a", "--psk", "00112233445566778899aabbccddeefg"}, "invalid --psk: not a hex string"},
		{"odd hex", false, []string{"--psk-identity", "a", "--psk", "0011223"}, "invalid --psk: not a hex string"},
		{"short psk", false, []string{"--psk-identity", "a", "--psk", "0011"}, "invalid --psk: 2 bytes, want 16..512"},
		{"psk without identity", false, []string{"--psk", testPSK}, "--psk-identity and --psk must be given together"},
		{"identity without psk", true, []string{"--psk-identity", "a"}, "--psk-identity and --psk must be given together"},
		{"empty identity", false, []string{"--psk-identity", "", "--psk", testPSK}, "invalid --psk-identity: must not be empty"},
		{"no credentials client", false, nil, "no credentials: give --psk-identity and --psk"},
		{"no credentials server", true, nil, "no credentials: give --psk-identity and --psk, or --psk-file"},
		{"bad psk file key", true, []string{"--psk-file", badFile}, "bad.txt:1: key: not a hex string"},
		{"bad psk file line", true, []string{"--psk-file", noColon}, "nocolon.txt:1: want identity:hexkey"},
		{"missing psk file", true, []string{"--psk-file", filepath.Join(dir, "none")}, "--psk-file: open"},
		{"milagro suite only", false, []string{"--psk-identity", "a", "--psk", testPSK, "--suites", "TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256"},
			"none of the chosen suites can use the configured PSK credentials"},
		{"negative timeout", false, []string{"--psk-identity", "a", "--psk", testPSK, "--handshake-timeout", "-1s"}, "must not be negative"},
		{"bad duration", false, []string{"--psk-identity", "a", "--psk", testPSK, "--handshake-timeout", "soon"}, "invalid value"},
		{"server flag on client", false, []string{"--psk-identity", "a", "--psk", testPSK, "--psk-hint", "h"}, "flag provided but not defined: -psk-hint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCreds(t, tc.server, tc.args...)
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestMilagroHook(t *testing.T) {
	oldFlags, oldApply, oldHas := milagroFlags, applyMilagro, hasMilagroCredentials
	defer func() { milagroFlags, applyMilagro, hasMilagroCredentials = oldFlags, oldApply, oldHas }()
	var called bool
	milagroFlags = func(server bool) []cli.Flag { return []cli.Flag{&cli.StringFlag{Name: "id"}} }
	applyMilagro = func(c *cli.Context, cfg *mtls.Config, server bool) error {
		called = c.String("id") == "alice"
		return nil
	}
	hasMilagroCredentials = func(c *cli.Context, server bool) bool { return c.IsSet("id") }
	if _, err := parseCreds(t, false, "--id", "alice"); err != nil || !called {
		t.Fatalf("hook: err %v called %v", err, called)
	}
	if _, err := parseCreds(t, false); err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Fatalf("no credentials at all: %v", err)
	}
}

func TestAppErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mtls", "client", "--psk-identity", "a", "--psk", "xyz"}, "mtls client: invalid --psk: not a hex string"},
		{[]string{"mtls", "server", "--psk-identity", "a", "--psk", testPSK, "--suites", "NOPE"}, `mtls server: unknown cipher suite "NOPE" in --suites; valid names: `},
		{[]string{"mtls", "--log-format", "xml", "server"}, "invalid --log-format"},
		{[]string{"mtls", "--log-level", "loud", "server"}, "invalid --log-level"},
		{[]string{"mtls", "client", "--psk-identity", "a", "--psk", testPSK, "--connect", "nohostport"}, "mtls client: invalid --connect"},
		{[]string{"mtls", "client", "--psk-identity", "a", "--psk", testPSK, "extra"}, "mtls client: unexpected arguments: extra"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, strings.NewReader(""), &out, &errb)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", tc.args, code)
		}
		lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
		if last := lines[len(lines)-1]; !strings.Contains(last, tc.want) {
			t.Errorf("%v: last stderr line %q does not contain %q", tc.args, last, tc.want)
		}
	}
}

func TestCommandsSorted(t *testing.T) {
	app := newApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Name)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] > names[i] {
			t.Fatalf("commands not sorted: %v", names)
		}
	}
	for _, want := range []string{"client", "server"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Fatalf("command %q not registered: %v", want, names)
		}
	}
}
