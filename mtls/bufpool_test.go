package mtls

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpConns returns an established client/server pair over loopback TCP
// (PSK-AES128-GCM-SHA256).
func tcpConns(t *testing.T) (cc, sc *Conn) {
	t.Helper()
	psk := bytes.Repeat([]byte{7}, 32)
	ccfg := &Config{PSKIdentity: "id", PSK: psk, CipherSuites: []uint16{0x00A8}}
	scfg := &Config{CipherSuites: []uint16{0x00A8}, GetServerPSK: func(string) ([]byte, error) { return psk, nil }}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan *Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- nil
			return
		}
		s := Server(c, scfg)
		s.Handshake()
		ch <- s
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc = Client(raw, ccfg)
	if err := cc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if sc = <-ch; sc == nil || !sc.handshakeComplete.Load() {
		t.Fatal("server handshake failed")
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return cc, sc
}

func heldBuffers(c *Conn) []string {
	c.in.Lock()
	defer c.in.Unlock()
	c.out.Lock()
	defer c.out.Unlock()
	var held []string
	for name, held1 := range map[string]bool{
		"raw": c.rbuf.rawp != nil || c.rbuf.raw != nil, "plain": c.rbuf.plainp != nil || c.rbuf.plain != nil,
		"out": c.wbuf.outp != nil || c.wbuf.buf != nil, "hand": c.rbuf.hand != nil,
		"sendBuf": c.wbuf.flight != nil, "hsPending": c.wbuf.pending != nil,
	} {
		if held1 {
			held = append(held, name)
		}
	}
	return held
}

func TestIdleConnHoldsNoBuffers(t *testing.T) {
	cc, sc := tcpConns(t)
	for _, c := range []*Conn{cc, sc} {
		if h := heldBuffers(c); len(h) != 0 {
			t.Errorf("after the handshake: holds %v", h)
		}
	}
	msg := bytes.Repeat([]byte("secret"), 10000) // several records
	wrote := writeAsync(cc, msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(sc, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read: %v", err)
	}
	if err := <-wrote; err != nil { // the writer has given its buffer back
		t.Fatal(err)
	}
	if h := heldBuffers(cc); len(h) != 0 {
		t.Errorf("writer after a transfer: holds %v", h)
	}
	waitingReleases(t, sc, cc) // the reader keeps its buffers until it waits
	// A partial Read keeps the rest of the record.
	wrote = writeAsync(cc, []byte("abcdef"))
	if _, err := io.ReadFull(sc, got[:2]); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if sc.rbuf.plainp == nil {
		t.Error("plaintext buffer released with data unread")
	}
	if _, err := io.ReadFull(sc, got[:4]); err != nil || string(got[:4]) != "cdef" {
		t.Fatalf("rest: %q %v", got[:4], err)
	}
	waitingReleases(t, sc, cc)
}

// writeAsync writes b on c from another goroutine; the channel reports
// when Write has returned (and so has given its output buffer back).
func writeAsync(c *Conn, b []byte) <-chan error {
	done := make(chan error, 1)
	go func() { _, err := c.Write(b); done <- err }()
	return done
}

// waitingReleases checks that c, once the peer is quiet and a Read blocks
// waiting for it, has given back every pooled buffer it held; then it lets
// that Read finish with one byte from peer.
func waitingReleases(t *testing.T, c, peer *Conn) {
	t.Helper()
	c.in.Lock()
	held := 0
	for _, p := range []*[]byte{c.rbuf.rawp, c.rbuf.plainp} {
		if p != nil {
			held++
		}
	}
	c.in.Unlock()
	before := pooledOut.Load()
	done := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); done <- err }()
	deadline := time.Now().Add(5 * time.Second)
	for pooledOut.Load() > before-int64(held) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := before - pooledOut.Load(); got != int64(held) {
		t.Errorf("blocked waiting for a quiet peer: gave back %d of the %d buffers it held", got, held)
	}
	if _, err := peer.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPooledBuffersAreCleared(t *testing.T) {
	bp := getBuf(recordBufLen)
	copy(*bp, "plaintext")
	putBuf(bp, len("plaintext"))
	if !bytes.Equal((*bp)[:9], make([]byte, 9)) {
		t.Fatal("buffer not cleared before going back to the pool")
	}
	for _, n := range []int{1, smallBufLen, smallBufLen + 1, recordBufLen, rawBufLen, batchBufLen} {
		if b := getBuf(n); len(*b) < n {
			t.Errorf("getBuf(%d): %d bytes", n, len(*b))
		}
	}
	if batchBufLen < recordHeaderLen+maxSealOverhead+maxWriteBatch*(maxPlaintext+recordHeaderLen+maxSealOverhead) {
		t.Error("batch class too small for writeBuffer.ensure")
	}
}

func TestWaitReadable(t *testing.T) {
	cc, sc := tcpConns(t)
	// A deadline interrupts the buffer-less wait, and the connection survives.
	sc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	err := sc.WaitReadable()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("WaitReadable with a deadline: %v", err)
	}
	sc.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { done <- sc.WaitReadable() }()
	select {
	case err := <-done:
		t.Fatalf("WaitReadable returned %v with nothing sent", err)
	case <-time.After(50 * time.Millisecond):
	}
	cc.Write([]byte("hello"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	sc.SetReadDeadline(time.Now().Add(-time.Second)) // must not block now
	n, err := sc.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read after WaitReadable: %q %v", buf[:n], err)
	}
	sc.SetReadDeadline(time.Time{})
	// close_notify: io.EOF from both.
	cc.CloseWrite()
	if err := sc.WaitReadable(); err != io.EOF {
		t.Fatalf("WaitReadable after close_notify: %v", err)
	}
	if _, err := sc.Read(buf); err != io.EOF {
		t.Fatalf("Read after close_notify: %v", err)
	}
}

func TestCloseInterruptsBufferlessWait(t *testing.T) {
	_, sc := tcpConns(t)
	done := make(chan error, 1)
	go func() {
		_, err := sc.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	sc.conn.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt a blocked Read")
	}
}

func TestResetDuringBufferlessWait(t *testing.T) {
	cc, sc := tcpConns(t)
	done := make(chan error, 1)
	go func() {
		_, err := sc.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	tc := cc.conn.(*net.TCPConn)
	tc.SetLinger(0)
	tc.Close() // RST
	select {
	case err := <-done:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("Read after a reset: %v, want ECONNRESET", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a reset did not end a blocked Read")
	}
}

// While the peer's data keeps coming, Read keeps its buffers from record to
// record (no pool round trip and clearing per record); once the peer is
// quiet they go back.
func TestBulkReadKeepsBuffersWhileDataPending(t *testing.T) {
	cc, sc := tcpConns(t)
	msg := bytes.Repeat([]byte{0x5a}, 3*16384) // three full records
	if _, err := cc.Write(msg); err != nil {   // in the server's socket buffer now
		t.Fatal(err)
	}
	got := make([]byte, 16384)
	if _, err := io.ReadFull(sc, got); err != nil {
		t.Fatal(err)
	}
	sc.in.Lock()
	kept := sc.rbuf.rawp != nil
	sc.in.Unlock()
	if !kept {
		t.Error("raw buffer released although more records were waiting in the socket")
	}
	if _, err := io.ReadFull(sc, make([]byte, 2*16384)); err != nil {
		t.Fatal(err)
	}
	waitingReleases(t, sc, cc)
}
