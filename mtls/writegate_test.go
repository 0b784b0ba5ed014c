package mtls_test

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// writeSignal is a net.Conn that reports, once armed, that a Write reached
// it (and so, on an unbuffered net.Pipe nobody reads, is blocked there).
type writeSignal struct {
	net.Conn
	armed   atomic.Bool
	entered chan struct{}
}

func (w *writeSignal) Write(b []byte) (int, error) {
	if w.armed.CompareAndSwap(true, false) {
		close(w.entered)
	}
	return w.Conn.Write(b)
}

// Close must not wait for a Write blocked in the underlying connection
// (sending close_notify would queue behind it for ever): it closes the
// socket, the Write fails, and both later Writes and Closes report
// net.ErrClosed.
func TestCloseBreaksBlockedWrite(t *testing.T) {
	ccfg, scfg := pskConfigs()
	c1, c2 := net.Pipe()
	t.Cleanup(func() { c1.Close(); c2.Close() })
	ws := &writeSignal{Conn: c1, entered: make(chan struct{})}
	cc, sc := mtls.Client(ws, ccfg), mtls.Server(c2, scfg)
	if cerr, serr := handshakePair(t, cc, sc); cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	ws.armed.Store(true)
	werr := make(chan error, 1)
	go func() {
		_, err := cc.Write(make([]byte, 1000)) // sc never reads
		werr <- err
	}()
	<-ws.entered
	cc.Close() // its own result does not matter here; returning does
	if err := <-werr; err == nil {
		t.Fatal("the blocked Write succeeded after Close")
	}
	if _, err := cc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
	if err := cc.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

// A failed write ends the write side with an error that still reads as
// its cause: a deadline stays a timeout (and errors.Is finds it), never a
// temporary condition.
func TestWriteFailureKeepsCause(t *testing.T) {
	ccfg, scfg := pskConfigs()
	cc, sc := pipePair(t, ccfg, scfg)
	if cerr, serr := handshakePair(t, cc, sc); cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	cc.SetWriteDeadline(time.Unix(1, 0)) // long past
	_, err := cc.Write([]byte("x"))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past the deadline: %v", err)
	}
	if ne.Temporary() {
		t.Fatal("a failed write reads as temporary")
	}
	cc.SetWriteDeadline(time.Time{})
	if _, err2 := cc.Write([]byte("y")); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second write: %v, want the first failure again (%v)", err2, err)
	}
}
