package dta

import (
	"bufio"
	"context"
	"net/http"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
)

// The D-TA prefers P-256 for ECDHE but still serves a client that offers
// only X25519, or only P-256.
func TestECDHEGroupsServed(t *testing.T) {
	d := startDTA(t, nil)
	e, err := dtaclient.Enroll(context.Background(), nil, codesFor(t, []*testDTA{d}, dtawire.KindClient, "carol"))
	if err != nil {
		t.Fatal(err)
	}
	cr, err := e.Renewal.DTAs[0].Credential(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, curves := range [][]ciphersuite.CurveID{{ciphersuite.X25519}, {ciphersuite.P256}, {ciphersuite.X25519, ciphersuite.P256}} {
		c, err := mtls.Dial("tcp", d.addr, &mtls.Config{CipherSuites: dtawire.Suites, PSKIdentity: cr.Identity, PSK: cr.PSK, ServerName: cr.ServerName, CurvePreferences: curves})
		if err != nil {
			t.Fatalf("groups %v: %v", curves, err)
		}
		k := &keptAlive{c: c, br: bufio.NewReader(c)}
		if st, _ := k.info(t); st != http.StatusOK {
			t.Fatalf("groups %v: /v1/info %d", curves, st)
		}
		c.Close()
	}
}
