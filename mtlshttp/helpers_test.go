package mtlshttp_test

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

var testPSK = []byte("0123456789abcdef0123456789abcdef")

const (
	testIdentity = "client1"
	milAlice     = "alice@example.com"
)

// pskConfigs returns a PSK client and a server that knows only its key.
func pskConfigs(suites ...uint16) (client, server *mtls.Config) {
	client = &mtls.Config{PSKIdentity: testIdentity, PSK: testPSK, CipherSuites: suites}
	server = &mtls.Config{
		CipherSuites:    suites,
		PSKIdentityHint: "hint",
		GetServerPSK: func(id string) ([]byte, error) {
			if id != testIdentity {
				return nil, fmt.Errorf("unknown identity %q", id)
			}
			return testPSK, nil
		},
	}
	return client, server
}

// milCSConfigs returns a Milagro CS client (milAlice, keys from one D-TA)
// and a server that does not ask for time permits.
func milCSConfigs(t testing.TB, suite uint16) (client, server *mtls.Config) {
	t.Helper()
	ta, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serverKey, err := pairing.CombineCSServerSecrets(ta.IssueCSServerSecret())
	if err != nil {
		t.Fatal(err)
	}
	share, err := ta.IssueCSClientKey(milAlice)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pairing.CombineCSClientKeys(share)
	if err != nil {
		t.Fatal(err)
	}
	client = &mtls.Config{CSKey: key, CipherSuites: []uint16{suite}}
	server = &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{serverKey}, PermitMode: pairing.PermitsOptional, CipherSuites: []uint16{suite}}
	return client, server
}
