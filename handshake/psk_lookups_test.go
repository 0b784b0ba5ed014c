package handshake

import (
	"sync/atomic"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
)

// A full PSK handshake without session tickets looks the client's key up
// once: a server whose PSK lookup is a database read (the D-TA) pays one
// read per handshake, not a second one for a ticket it never sends.
func TestPSKLookedUpOnceWithoutTickets(t *testing.T) {
	for _, s := range pskSuites() {
		t.Run(s.Name, func(t *testing.T) {
			ccfg, scfg := testConfigs([]*ciphersuite.Suite{s}, "")
			var lookups atomic.Int32
			lookup := scfg.KX.PSK
			scfg.KX.PSK = func(id []byte) ([]byte, error) {
				lookups.Add(1)
				return lookup(id)
			}
			r := runPair(t, ccfg, scfg)
			checkSuccess(t, r)
			if n := lookups.Load(); n != 1 {
				t.Fatalf("%d PSK lookups in one full handshake without tickets, want 1", n)
			}
		})
	}
}
