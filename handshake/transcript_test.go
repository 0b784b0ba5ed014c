package handshake

import (
	"bytes"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
)

// TestTranscriptIndependent recomputes the master secret and both Finished
// values from the messages each side actually sent (plain PSK, so the
// pre-master secret is known: uint16(N) ‖ N zeros ‖ uint16(N) ‖ psk), with
// and without EMS. It pins which messages are hashed and in what order.
func TestTranscriptIndependent(t *testing.T) {
	implementations(t, func(t *testing.T) {
		pms := append(append([]byte{0, 16}, make([]byte, 16)...), append([]byte{0, 16}, testPSK...)...)
		for _, s := range ciphersuite.ByKX(ciphersuite.KXPSK) {
			for _, ems := range []bool{true, false} {
				for _, hint := range []string{"", "h"} {
					if !ems {
						withClientHello(t, func(m *clientHelloMsg) { m.ems = false })
					} else {
						testHookClientHello = nil
					}
					ccfg, scfg := testConfigs([]*ciphersuite.Suite{s}, hint)
					ccfg.InsecureAllowNoEMS, scfg.InsecureAllowNoEMS = true, true
					r := runPair(t, ccfg, scfg)
					checkSuccess(t, r)
					// client sent: CH, CKE, Fin; server sent: SH, [SKE], SHD, Fin.
					cs, ss := r.crl.sent, r.srl.sent
					if len(cs) != 3 || len(ss) != 3+boolInt(hint != "") {
						t.Fatalf("sent %d / %d messages", len(cs), len(ss))
					}
					h := s.Hash.New()
					h.Write(cs[0])
					for _, m := range ss[:len(ss)-1] {
						h.Write(m)
					}
					h.Write(cs[1])
					sessionHash := h.Sum(nil)
					var master []byte
					if ems {
						master = PRF(s.Hash, pms, "extended master secret", sessionHash, 48)
					} else {
						master = PRF(s.Hash, pms, "master secret", append(r.cst.ClientRandom[:], r.cst.ServerRandom[:]...), 48)
					}
					if !bytes.Equal(master, r.cst.MasterSecret) || r.cst.ExtendedMasterSecret != ems {
						t.Fatalf("%s ems=%v: master secret differs from the independent computation", s, ems)
					}
					if cf := PRF(s.Hash, master, "client finished", sessionHash, 12); !bytes.Equal(cf, r.cst.ClientFinished) || !bytes.Equal(cs[2][4:], cf) {
						t.Fatal("client Finished")
					}
					h.Write(cs[2])
					if sf := PRF(s.Hash, master, "server finished", h.Sum(nil), 12); !bytes.Equal(sf, r.sst.ServerFinished) || !bytes.Equal(ss[len(ss)-1][4:], sf) {
						t.Fatal("server Finished")
					}
				}
			}
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
