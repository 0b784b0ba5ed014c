package mtls

import (
	"bytes"
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

// TestInputPending: InputPending reports buffered application data and
// buffered record bytes, and an ended read side; when it reports nothing
// the connection holds no read buffer, and the next record is read once
// it comes.
func TestInputPending(t *testing.T) {
	cc, sc := tcpConns(t)
	if sc.InputPending() || len(heldBuffers(sc)) != 0 {
		t.Fatalf("idle connection: pending %v, holds %v", sc.InputPending(), heldBuffers(sc))
	}
	// Two records in one write: the first Read decrypts the first and may
	// buffer the second's bytes.
	if _, err := cc.Write(bytes.Repeat([]byte{1}, 20<<10)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(sc, buf); err != nil {
		t.Fatal(err)
	}
	if !sc.InputPending() {
		t.Fatal("application data buffered, InputPending says none")
	}
	rest := make([]byte, 20<<10-100)
	if _, err := io.ReadFull(sc, rest); err != nil {
		t.Fatal(err)
	}
	if sc.InputPending() {
		t.Fatal("everything read, InputPending says more")
	}
	if h := heldBuffers(sc); len(h) != 0 {
		t.Fatalf("nothing pending but holds %v", h)
	}
	cc.Close()
	if _, err := sc.Read(buf); err != io.EOF {
		t.Fatalf("after close_notify: %v", err)
	}
	if !sc.InputPending() {
		t.Fatal("read side ended, InputPending says a Read would block")
	}
}
