package mtls

import "testing"

// After the handshake the connection keeps the traffic keys (in its record
// ciphers) but not the master secret.
func TestMasterSecretNotRetained(t *testing.T) {
	cc, sc := tcpConns(t)
	for name, c := range map[string]*Conn{"client": cc, "server": sc} {
		if c.state == nil {
			t.Fatalf("%s: no state after the handshake", name)
		}
		if c.state.MasterSecret != nil {
			t.Errorf("%s: master secret still held after the handshake", name)
		}
	}
	// The connection still works with the keys it has.
	go func() { cc.Write([]byte("ping")) }()
	buf := make([]byte, 4)
	if _, err := sc.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
}
