package proxy

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// Refusals of a Milagro CS client are counted by cause, with the suite the
// hello chose, as docs/operators-guide.md tells operators to alert on.
func TestMilagroFailureReasons(t *testing.T) {
	ta, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := pairing.NewMasterShare(rand.Reader) // another deployment
	secret, _ := pairing.CombineCSServerSecrets(ta.IssueCSServerSecret())
	keyShare, _ := ta.IssueCSClientKey("alice@example.com")
	key, _ := pairing.CombineCSClientKeys(keyShare)
	otherShare, _ := other.IssueCSClientKey("alice@example.com")
	forged, _ := pairing.CombineCSClientKeys(otherShare)
	old, _ := ta.IssueTimePermit("alice@example.com", pairing.Day(time.Now())-3)
	oldPermit, _ := pairing.CombineTimePermits(old)

	m := NewMetrics()
	s := &Server{Target: startUpstream(t, nil).addr(), Metrics: m}
	addr := startServer(t, s, AllowAll())
	if err := s.SetConfig(&mtls.Config{CSServerKeys: []*pairing.CSServerSecret{secret}}, AllowAll()); err != nil {
		t.Fatal(err)
	}
	const suite = "TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256"
	for _, tc := range []struct {
		name   string
		cfg    *mtls.Config
		reason string
	}{
		{"no permit at a server that requires one", &mtls.Config{CSKey: key}, "permit"},
		{"an old permit", &mtls.Config{CSKey: key, GetCSPermit: func(uint64) (*pairing.TimePermit, error) { return oldPermit, nil }}, "permit"},
	} {
		tc.cfg.CipherSuites = []uint16{ciphersuite.ByName(suite).ID}
		before := metricValue(m.hsFailures.WithLabelValues(tc.reason))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := (&mtls.Dialer{Config: tc.cfg}).DialContext(ctx, "tcp", addr)
		cancel()
		var ae *mtls.AlertError
		if !errors.As(err, &ae) || ae.Alert != ciphersuite.AlertAccessDenied {
			t.Fatalf("%s: %v, want access_denied", tc.name, err)
		}
		if !waitFor(5*time.Second, func() bool { return metricValue(m.hsFailures.WithLabelValues(tc.reason)) == before+1 }) {
			t.Errorf("%s: reason %q not counted", tc.name, tc.reason)
		}
	}

	// A wrong key with a valid permit day: the proof fails, bad_key.
	if err := s.SetConfig(&mtls.Config{CSServerKeys: []*pairing.CSServerSecret{secret}, PermitMode: pairing.PermitsOptional}, AllowAll()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = (&mtls.Dialer{Config: &mtls.Config{CSKey: forged, CipherSuites: []uint16{ciphersuite.ByName(suite).ID}}}).DialContext(ctx, "tcp", addr)
	cancel()
	if err == nil {
		t.Fatal("a key of another deployment was accepted")
	}
	if !waitFor(5*time.Second, func() bool { return metricValue(m.hsFailures.WithLabelValues("bad_key")) == 1 }) {
		t.Errorf("a wrong key is not counted as bad_key")
	}
	if v := metricValue(m.handshakes.WithLabelValues(suite, resultDenied, "false")); v != 3 {
		t.Errorf("mtls_proxy_handshakes_total{suite=%q,result=denied} = %v, want 3 (the suite the hello chose)", suite, v)
	}
}

// The operator's guide lists every failure reason the metrics use.
func TestFailureReasonsDocumented(t *testing.T) {
	guide, err := os.ReadFile("../docs/operators-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(guide), "mtls_proxy_handshake_failures_total{reason}")
	if i < 0 {
		t.Fatal("the guide does not document mtls_proxy_handshake_failures_total{reason}")
	}
	section := string(guide[i:])
	if j := strings.Index(section, "\n- "); j > 0 {
		section = section[:j]
	}
	for _, r := range failureReasons {
		if !strings.Contains(section, r) {
			t.Errorf("docs/operators-guide.md: reason %q of mtls_proxy_handshake_failures_total is not listed", r)
		}
	}
}
