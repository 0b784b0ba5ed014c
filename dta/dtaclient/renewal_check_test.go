package dtaclient

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// A renewal file is checked against the endpoint's keys without a process
// or a D-TA: kind of endpoint, identity and D-TA set must all match.
func TestRenewalCheckConfig(t *testing.T) {
	var tas [3]*pairing.MasterShare
	fps := make([]string, len(tas))
	for i := range tas {
		m, err := pairing.NewMasterShare(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tas[i], fps[i] = m, m.Fingerprint().String()
	}
	combine := func(n int, issue func(*pairing.MasterShare) (pairing.LabeledKey, error)) any {
		t.Helper()
		var shares []pairing.LabeledKey
		for _, m := range tas[:n] {
			s, err := issue(m)
			if err != nil {
				t.Fatal(err)
			}
			shares = append(shares, s)
		}
		k, err := pairing.CombineShares(shares)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	csKey := func(id string, n int) *pairing.CSClientKey {
		return combine(n, func(m *pairing.MasterShare) (pairing.LabeledKey, error) {
			k, err := m.IssueCSClientKey(id)
			return pairing.LabeledKey{Label: m.Fingerprint().String(), Key: k}, err
		}).(*pairing.CSClientKey)
	}
	alice, alice2, bob := csKey("alice", 3), csKey("alice", 2), csKey("bob", 3)
	token, err := alice.ExtractPIN(4321)
	if err != nil {
		t.Fatal(err)
	}
	server := combine(3, func(m *pairing.MasterShare) (pairing.LabeledKey, error) {
		k, err := m.IssueCSServerKey("api")
		return pairing.LabeledKey{Label: "s", Key: k}, err
	}).(*pairing.CSServerSecret)
	node := combine(3, func(m *pairing.MasterShare) (pairing.LabeledKey, error) {
		k, err := m.IssueP2PKey("node-a")
		return pairing.LabeledKey{Label: "n", Key: k}, err
	}).(*pairing.P2PKey)

	renewal := func(kind dtawire.Kind, id string, n int) *Renewal {
		r := &Renewal{Version: renewalVersion, Kind: kind, Identity: id}
		for _, fp := range fps[:n] {
			r.DTAs = append(r.DTAs, RenewalDTA{Address: "127.0.0.1:1", Fingerprint: fp, Kind: kind, Identity: id})
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		r      *Renewal
		cfg    *mtls.Config
		server bool
		want   string // "" for accepted
	}{
		{"client key", renewal(dtawire.KindClient, "alice", 3), &mtls.Config{CSKey: alice}, false, ""},
		{"client token", renewal(dtawire.KindClient, "alice", 3), &mtls.Config{CSToken: token}, false, ""},
		{"client, other identity", renewal(dtawire.KindClient, "bob", 3), &mtls.Config{CSKey: alice}, false, `the file is for "bob", but the CS client key is for "alice"`},
		{"client, fewer D-TAs in the file", renewal(dtawire.KindClient, "alice", 2), &mtls.Config{CSKey: alice}, false, "the file names D-TAs " + fps[0] + "," + fps[1] + ", but the CS client key comes from"},
		{"client, key of fewer D-TAs", renewal(dtawire.KindClient, "alice", 3), &mtls.Config{CSToken: nil, CSKey: alice2}, false, "but the CS client key comes from"},
		{"client, no key", renewal(dtawire.KindClient, "alice", 3), &mtls.Config{P2PKey: node}, false, "time permits need the CS client key or PIN token"},
		{"client file on a server", renewal(dtawire.KindClient, "alice", 3), &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{server}}, true, "it is a CS client's"},
		{"server", renewal(dtawire.KindServer, "api", 3), &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{server}}, true, ""},
		{"server, no key of its identity", renewal(dtawire.KindServer, "web", 3), &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{server}}, true, `it is for server identity "web"`},
		{"server file on a client", renewal(dtawire.KindServer, "web", 3), &mtls.Config{CSKey: bob}, false, "it is a server's"},
		{"server, other D-TAs", renewal(dtawire.KindServer, "api", 2), &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{server}}, true, "but the server key comes from"},
		{"p2p", renewal(dtawire.KindP2P, "node-a", 3), &mtls.Config{P2PKey: node}, false, ""},
		{"p2p, other peer", renewal(dtawire.KindP2P, "node-b", 3), &mtls.Config{P2PKey: node}, true, `it is for P2P peer "node-b"`},
		{"p2p, other D-TAs", renewal(dtawire.KindP2P, "node-a", 1), &mtls.Config{P2PKey: node}, false, "but the P2P key comes from"},
		{"unknown kind", renewal("ca", "alice", 3), &mtls.Config{CSKey: alice}, false, `unknown kind "ca"`},
		{"no config", renewal(dtawire.KindClient, "alice", 3), nil, false, "no configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.CheckConfig(tc.cfg, tc.server)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
