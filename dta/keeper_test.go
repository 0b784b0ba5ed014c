package dta

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
)

// TestCredentialKeeper: what --renewal does for a server. Rotation replaces
// the secrets in the file (the original one is refused once the new one has
// authorized a request), and a revocation at one D-TA is reported naming
// that D-TA while the others keep accepting the credential.
func TestCredentialKeeper(t *testing.T) {
	var dtas []*testDTA
	for range 3 {
		dtas = append(dtas, startDTA(t, nil))
	}
	ctx := context.Background()
	e, err := dtaclient.Enroll(ctx, nil, codesFor(t, dtas, dtawire.KindServer, "api.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "api.renewal")
	if err := dtaclient.WriteRenewal(path, e.Renewal, false); err != nil {
		t.Fatal(err)
	}
	original := e.Renewal.DTAs[0]
	reg := prometheus.NewRegistry()
	k, err := dtaclient.OpenCredentialKeeper(ctx, path, dtaclient.KeeperConfig{Logger: quietLogger(), Registerer: reg})
	if err != nil {
		t.Fatalf("first check: %v", err)
	}
	for i := range 2 {
		if err := k.Rotate(ctx); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
	}
	saved, err := dtaclient.LoadRenewal(path)
	if err != nil {
		t.Fatal(err)
	}
	if saved.DTAs[0].Secret == original.Secret {
		t.Fatal("the renewal file still holds the original secret after two rotations")
	}
	var ae *ciphersuite.AlertError
	if _, err := dtaclient.Info(ctx, nil, original.Address, &original); !errors.As(err, &ae) || ae.Alert != ciphersuite.AlertBadRecordMAC {
		t.Fatalf("the original secret after two rotations: %v; want bad_record_mac", err)
	}
	if _, err := dtaclient.Info(ctx, nil, saved.DTAs[0].Address, &saved.DTAs[0]); err != nil {
		t.Fatalf("the saved secret: %v", err)
	}
	if err := k.Check(ctx); err != nil || k.Health() != nil {
		t.Fatalf("check after rotation: %v, health %v", err, k.Health())
	}

	if err := dtas[1].store.Revoke(dtawire.KindServer, "api.example.com", "decommissioned", "test"); err != nil {
		t.Fatal(err)
	}
	err = k.Check(ctx)
	fp := e.Renewal.DTAs[1].Fingerprint
	var me dtaclient.MultiError
	if !errors.As(err, &me) || len(me) != 1 || me[0].Fingerprint != fp || !dtaclient.IsCode(err, dtawire.CodeRevoked) {
		t.Fatalf("after a revocation at D-TA 2: %v; want one failure naming %s, revoked", err, fp)
	}
	if h := k.Health(); h == nil || !strings.Contains(h.Error(), fp) {
		t.Fatalf("health after the revocation: %v", h)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("renewal file: %v, mode %v", err, fi.Mode().Perm())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "dta" && l.GetValue() != fp {
					t.Errorf("failure counted for D-TA %s, which did not fail", l.GetValue())
				}
			}
			got[mf.GetName()] += m.GetCounter().GetValue()
		}
	}
	if got["mtls_renewal_credential_rotations_total"] != 2 || got["mtls_renewal_credential_failures_total"] != 1 {
		t.Fatalf("metrics %v; want 2 rotations, 1 failure", got)
	}
}
