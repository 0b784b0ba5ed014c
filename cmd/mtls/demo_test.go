package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `mtls demo` as a user would (the README's main command) and
// checks that every step of the story happened.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, mtlsBin, "demo", "--dir", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("mtls demo: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		"hello alice@example.com",
		"✔ the service saw the authenticated identity alice@example.com",
		"✔ suite: TLS_MILAGRO_CS_",
		"remote error: access_denied",
		"✔ neither refused client ever reached the service",
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
