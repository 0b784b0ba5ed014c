package mtls_test

import (
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// The loaders of keys that authenticate refuse one D-TA's share, saying
// what to do; LoadKey still reads it (to combine shares).
func TestLoadersRefuseOneShare(t *testing.T) {
	ta, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := ta.IssueCSClientKey("alice@example.com")
	p2p, _ := ta.IssueP2PKey("node-a")
	tp, _ := ta.IssueTimePermit("alice@example.com", 20000)
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		share any
		load  func(string) error
	}{
		"cs client key": {ck, func(p string) error { _, err := mtls.LoadCSClientKey(p); return err }},
		"cs server key": {ta.IssueCSServerSecret(), func(p string) error { _, err := mtls.LoadCSServerSecret(p); return err }},
		"p2p key":       {p2p, func(p string) error { _, err := mtls.LoadP2PKey(p); return err }},
		"time permit":   {tp, func(p string) error { _, err := mtls.LoadTimePermit(p); return err }},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := mtls.WriteKey(path, tc.share); err != nil {
			t.Fatal(err)
		}
		err := tc.load(path)
		if !errors.Is(err, mtls.ErrKeyShare) || !strings.Contains(err.Error(), "mtls keys combine") || !strings.Contains(err.Error(), ta.Fingerprint().String()) {
			t.Errorf("%s: %v, want ErrKeyShare naming the D-TA and the fix", name, err)
		}
		if _, err := mtls.LoadKey(path); err != nil {
			t.Errorf("%s: LoadKey: %v", name, err)
		}
	}
}

// Listen, like crypto/tls.Listen, refuses a Config with no server
// credential: every handshake on the listener would fail.
func TestListenRefusesNoCredential(t *testing.T) {
	for _, cfg := range []*mtls.Config{{}, {CSKey: nil, ServerIdentity: "x"}, {PSKIdentity: "client", PSK: make([]byte, 32)}} {
		ln, err := mtls.Listen("tcp", "127.0.0.1:0", cfg)
		if err == nil {
			ln.Close()
			t.Fatalf("Listen with %+v: a listener", cfg)
		}
		if !strings.Contains(err.Error(), "no server credential") {
			t.Errorf("Listen: %v", err)
		}
	}
	ln, err := mtls.Listen("tcp", "127.0.0.1:0", &mtls.Config{GetServerPSK: func(string) ([]byte, error) { return nil, errors.New("none") }})
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}
