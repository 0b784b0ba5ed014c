package dta

import (
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// FuzzResponses feeds what a D-TA could answer to the enrollment client's
// decoders (a hostile D-TA must not crash or fool an endpoint).
func FuzzResponses(f *testing.F) {
	m, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	share, _ := issueShare(m, dtawire.KindClient, "alice")
	p2p, _ := issueShare(m, dtawire.KindP2P, "alice")
	srv, _ := issueShare(m, dtawire.KindServer, "")
	permit, _ := issuePermit(m, "alice", 20000)
	for _, s := range []struct {
		kind  string
		share string
	}{{"client", share}, {"p2p", p2p}, {"server", srv}, {"client", permit.Share}, {"server", share}} {
		b, _ := json.Marshal(dtawire.EnrollResponse{Kind: dtawire.Kind(s.kind), Identity: "alice", Share: s.share, Permits: []dtawire.PermitJSON{permit}})
		f.Add(b)
	}
	fp := m.Fingerprint()
	f.Fuzz(func(t *testing.T, b []byte) {
		var r dtawire.EnrollResponse
		if json.Unmarshal(b, &r) != nil {
			return
		}
		if k, err := dtawire.DecodeShare(r.Kind, fp, r.Identity, r.Share); err == nil {
			switch v := k.(type) {
			case *pairing.CSClientKey:
				if !v.IsShare() || v.DTAs()[0] != fp {
					t.Fatal("decoded share lost its origin")
				}
			case *pairing.CSServerSecret, *pairing.P2PKey:
			default:
				t.Fatalf("unexpected %T", k)
			}
		}
		for _, p := range r.Permits {
			if tp, err := dtawire.DecodePermit(fp, r.Identity, p); err == nil && (tp.Day() != p.Day || !tp.IsShare()) {
				t.Fatal("decoded permit differs")
			}
		}
	})
}
