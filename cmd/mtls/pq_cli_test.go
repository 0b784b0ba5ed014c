package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPQCLI: --pq on `mtls server` and `mtls client` with real processes:
// prefer meets require (hybrid, logged pq=true), require meets off
// (insufficient_security from the requiring side, either way round), and a
// bad mode is a usage error.
func TestPQCLI(t *testing.T) {
	k := makeCLIKeys(t)
	req, reqAddr := startServer(t, "--key", k.f("server.key"), "--p2p-key", k.f("node-a.key"), "--pq", "require")
	off, offAddr := startServer(t, "--key", k.f("server.key"), "--pq", "off")

	type run struct {
		name string
		args []string
		fail string // "" for success
	}
	runs := []run{
		{"CS prefer to require", []string{"--connect", reqAddr, "--key", k.f("alice.key")}, ""},
		{"P2P require to require", []string{"--connect", reqAddr, "--p2p-key", k.f("node-b.key"), "--server-id", "node-a", "--pq", "require"}, ""},
		{"CS off to require", []string{"--connect", reqAddr, "--key", k.f("alice.key"), "--pq", "off"}, "insufficient_security"},
		{"CS require to off", []string{"--connect", offAddr, "--key", k.f("alice.key"), "--pq", "require"}, "insufficient_security"},
		{"CS prefer to off", []string{"--connect", offAddr, "--key", k.f("alice.key")}, ""},
	}
	for _, r := range runs {
		p := startMTLS(t, []byte("hello\n"), append([]string{"client"}, r.args...)...)
		err := p.wait(t)
		if r.fail == "" {
			if err != nil || p.stdout.String() != "hello\n" {
				t.Errorf("%s: %v\n%s", r.name, err, p.stderr.String())
			}
			continue
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(p.stderr.String(), r.fail) {
			t.Errorf("%s: %v, want exit 1 with %s\n%s", r.name, err, r.fail, p.stderr.String())
		}
	}
	for _, s := range []*proc{req, off} {
		s.cmd.Process.Signal(os.Interrupt)
		if err := s.wait(t); err != nil {
			t.Fatalf("server after SIGINT: %v", err)
		}
	}
	if log := req.stderr.String(); strings.Count(log, "pq=true") != 2 || !strings.Contains(log, "insufficient_security") {
		t.Errorf("require server log: want 2 hybrid connections and the refusal:\n%s", log)
	}
	if log := off.stderr.String(); strings.Count(log, "pq=false") != 1 || strings.Contains(log, "pq=true") {
		t.Errorf("off server log: want 1 classic connection:\n%s", log)
	}

	mustFail(t, "", []string{"client", "--connect", reqAddr, "--key", k.f("alice.key"), "--pq", "on"}, "invalid --pq", "off, prefer or require")
	mustFail(t, "", []string{"server", "--listen", "127.0.0.1:0", "--dtls", "--p2p-key", k.f("node-a.key"), "--pq", "require"}, "--pq require", "DTLS")
}
