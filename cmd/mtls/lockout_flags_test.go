package main

import (
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// The lockout flags: per source, identity-wide (raised with the per-source
// one unless given), backoffs; 0 turns the lockout off.
func TestLockoutFlags(t *testing.T) {
	share, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := pairing.CombineCSServerSecrets(share.IssueCSServerSecret())
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "server.key")
	if err := mtls.WriteKey(key, sec); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseCreds(t, true, "--key", key)
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.CSLockout; l == nil || l.SourceThreshold != 5 || l.IdentityThreshold != 100 {
		t.Fatalf("default lockout %+v", l)
	}
	if cfg, err = parseCreds(t, true, "--key", key, "--lockout-threshold", "3", "--lockout-identity-threshold", "40"); err != nil ||
		cfg.CSLockout.SourceThreshold != 3 || cfg.CSLockout.IdentityThreshold != 40 {
		t.Fatalf("%+v %v", cfg.CSLockout, err)
	}
	if cfg, err = parseCreds(t, true, "--key", key, "--lockout-threshold", "200"); err != nil || cfg.CSLockout.IdentityThreshold != 200 {
		t.Fatalf("a per-source threshold above the identity-wide default: %+v %v", cfg.CSLockout, err)
	}
	if _, err := parseCreds(t, true, "--key", key, "--lockout-threshold", "10", "--lockout-identity-threshold", "5"); err == nil ||
		!strings.Contains(err.Error(), "--lockout-identity-threshold") {
		t.Fatalf("identity-wide below per-source: %v", err)
	}
	if cfg, err = parseCreds(t, true, "--key", key, "--lockout-threshold", "0"); err != nil || !cfg.DisableCSLockout {
		t.Fatalf("--lockout-threshold 0: %v", err)
	}
}
