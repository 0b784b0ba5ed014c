package mtls

import (
	"errors"
	"io"

	"github.com/milagro-go/milagro/ciphersuite"
	"testing"
)

// TestReadEndReleasesBuffers: once the read direction has ended for good -
// the peer's close_notify, or the peer gone without one - the connection
// holds no input buffer: they went back to the pools, not to the garbage
// collector with the connection (a mass close of idle connections would
// otherwise make each take fresh buffers to read its last record).
func TestReadEndReleasesBuffers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		end     func(peer *Conn)
		wantErr func(error) bool
	}{
		{"close_notify", func(peer *Conn) { peer.Close() }, func(err error) bool { return err == io.EOF }},
		{"truncated", func(peer *Conn) { peer.conn.Close() }, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"forged record", func(peer *Conn) { peer.conn.Write(append([]byte{23, 3, 3, 0, 40}, make([]byte, 40)...)) },
			func(err error) bool {
				var ae *AlertError
				return errors.As(err, &ae) && ae.Alert == ciphersuite.AlertBadRecordMAC
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, sc := tcpConns(t)
			before := pooledOut.Load()
			tc.end(cc)
			_, err := sc.Read(make([]byte, 10))
			if !tc.wantErr(err) {
				t.Fatalf("Read: %v", err)
			}
			if h := heldBuffers(sc); len(h) != 0 {
				t.Errorf("after the read direction ended (%v): still holds %v", err, h)
			}
			if got := pooledOut.Load() - before; got > 0 {
				t.Errorf("%d pooled buffers taken and not given back", got)
			}
		})
	}
}
