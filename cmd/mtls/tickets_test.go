package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTicketFlags(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.keys"), filepath.Join(dir, "bad.keys")
	os.WriteFile(good, []byte(strings.Repeat("ab", 32)+"\n"+strings.Repeat("cd", 32)+"\n"), 0o600)
	os.WriteFile(bad, []byte("short\n"), 0o600)
	base := []string{"--psk-identity", "client1", "--psk", testPSK}

	cfg, err := parseCreds(t, true, append(base, "--ticket-key-file", good)...)
	if err != nil {
		t.Fatal(err)
	}
	if keys := cfg.TicketKeys(); len(keys) != 2 || keys[0][0] != 0xab || keys[1][0] != 0xcd || cfg.SessionTicketsDisabled {
		t.Fatalf("keys %x, disabled %v", keys, cfg.SessionTicketsDisabled)
	}
	if cfg, err = parseCreds(t, true, append(base, "--no-tickets")...); err != nil || !cfg.SessionTicketsDisabled {
		t.Fatalf("--no-tickets: %v", err)
	}
	readable := filepath.Join(dir, "readable.keys")
	os.WriteFile(readable, []byte(strings.Repeat("ab", 32)+"\n"), 0o644)
	os.Chmod(readable, 0o644) // whatever the umask
	if _, err := parseCreds(t, true, append(base, "--ticket-key-file", readable)...); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a ticket key file others may read was accepted: %v", err)
	}
	for _, args := range [][]string{{"--ticket-key-file", bad}, {"--ticket-key-file", filepath.Join(dir, "none")},
		{"--no-tickets", "--ticket-key-file", good}} {
		if _, err := parseCreds(t, true, append(base, args...)...); err == nil || !strings.Contains(err.Error(), "ticket") {
			t.Fatalf("%v: %v", args, err)
		}
	}
	// Default: the process's automatic keys, the same for every Config
	// (a reload keeps sessions resumable).
	a, err := parseCreds(t, true, base...)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := parseCreds(t, true, base...)
	if ka, kb := a.TicketKeys(), b.TicketKeys(); len(ka) != 1 || ka[0] != kb[0] {
		t.Fatal("automatic keys differ between configurations")
	}
}

func TestTicketKeyRotationCLI(t *testing.T) {
	t0 := time.Unix(1763769600, 0)
	now := t0
	r := &ticketKeyRotation{rand: rand.Reader, now: func() time.Time { return now }}
	first := r.keys()
	for day := 1; day <= 8; day++ {
		now = t0.Add(time.Duration(day)*24*time.Hour + time.Second)
		ks := r.keys()
		found := false
		for _, k := range ks {
			found = found || k == first[0]
		}
		if found != (day < 7) || len(ks) != min(day+1, 7) {
			t.Fatalf("day %d: %d keys, first key kept %v", day, len(ks), found)
		}
	}
}
