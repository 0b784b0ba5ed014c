package mtls_test

import (
	"errors"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
)

// A P2P client identity is only a claim until the client's Finished
// verifies. A peer without the key for an identity the policy denies must
// not learn that (access_denied would answer before any authentication and
// let anyone enumerate the allow list): it fails like any forger.
func TestMilagroP2PPolicyAfterAuthentication(t *testing.T) {
	f := milFixtureFor(t)
	c, s := milP2PConfigs(t, 0xFF11)
	c.P2PKey = f.nodeB2of3 // claims node-b without node-b's key
	called := 0
	s.VerifyPeerIdentity = func(id string) error {
		called++
		return errors.New("node-b is not on the allow list")
	}
	milFail(t, c, s, nil, nil, "server", ciphersuite.AlertBadRecordMAC, "derived different keys")
	if called != 0 {
		t.Fatalf("VerifyPeerIdentity judged an unauthenticated identity %d times", called)
	}
}
