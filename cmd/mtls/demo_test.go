package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `mtls demo` as a user would (the README's main command) and
// checks that every step of the story happened.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, mtlsBin, "demo", "--dir", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("mtls demo: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		`msg="D-TA serving"`,
		`enrolled server "api.example.com" with 3 D-TAs`,
		`enrolled client "alice@example.com" with 3 D-TAs`,
		"proxy client --listen",
		"--renewal alice/alice.renewal --server-id api.example.com",
		"hello alice@example.com",
		"✔ the service saw the authenticated identity alice@example.com",
		"✔ suite: TLS_MILAGRO_CS_",
		"✔ client sidecar healthy, permits held for today",
		"✔ no permit for tomorrow before 18:00",
		"✔ tomorrow's permit refused: revoked",
		"✔ with only today's permit she connects until midnight and is refused from the next day on",
		"remote error: access_denied",
		"\n  The server refused the Milagro CS proof. Things to check here:\n    - time permit: ", // readable, on lines of their own
		"--reason 'laptop lost'",                                                                  // pastes into a shell as it is shown
		"✔ neither refused client ever reached the service",
		"✔ renewal refused: revoked at D-TA ",
		"✔ the revocation and the refused renewal are in dta2's audit log",
		"All checks passed",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "✘") {
		t.Errorf("demo reported a failed check:\n%s", s)
	}
}

// TestDemoInterrupted sends SIGINT once the D-TAs and sidecars run: the
// demo must stop every process and remove its temporary directory.
func TestDemoInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mtlsBin, "demo")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	var all bytes.Buffer
	var dir string
	var addrs []string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		if d, ok := strings.CutPrefix(line, "working directory: "); ok {
			dir = strings.TrimSpace(d)
		}
		if strings.Contains(line, `msg="D-TA serving"`) || strings.Contains(line, `msg="proxy listening"`) {
			addrs = append(addrs, logField(line, "addr"))
		}
		if strings.Contains(line, "$ curl http://") {
			cmd.Process.Signal(syscall.SIGINT)
			break
		}
	}
	go io.Copy(&all, pr)
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatalf("demo did not stop after SIGINT:\n%s", all.String())
	}
	if err == nil {
		t.Fatalf("an interrupted demo exited 0:\n%s", all.String())
	}
	if dir == "" || len(addrs) != 5 {
		t.Fatalf("working directory %q, %d listening processes seen, want 5:\n%s", dir, len(addrs), all.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo's directory %s is still there: %v", dir, err)
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the interrupted demo", a)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"laptop lost": "'laptop lost'", "alice@example.com": "alice@example.com", "": "''",
		"it's": `'it'\''s'`, "a;b": "'a;b'", "--out-dir": "--out-dir", "$HOME": "'$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
