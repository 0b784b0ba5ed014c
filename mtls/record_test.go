package mtls

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/milagro-go/milagro/ciphersuite"
)

// testCipher is a RecordCipher for record-layer tests (ChaCha20-Poly1305,
// nonce = seq), independent of package ciphersuite.
type testCipher struct {
	aead  cipher.AEAD
	nonce [12]byte
	aad   [13]byte
}

func newTestCipher(t testing.TB, key byte) *testCipher {
	k := bytes.Repeat([]byte{key}, 32)
	a, err := chacha20poly1305.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return &testCipher{aead: a}
}

func (c *testCipher) ExplicitNonceLen() int { return 0 }
func (c *testCipher) Overhead() int         { return 16 }
func (c *testCipher) setup(seq uint64, typ uint8, version uint16, n int) {
	binary.BigEndian.PutUint64(c.nonce[4:], seq)
	binary.BigEndian.PutUint64(c.aad[:], seq)
	c.aad[8] = typ
	binary.BigEndian.PutUint16(c.aad[9:], version)
	binary.BigEndian.PutUint16(c.aad[11:], uint16(n))
}
func (c *testCipher) Seal(dst []byte, seq uint64, typ uint8, version uint16, p []byte) []byte {
	c.setup(seq, typ, version, len(p))
	return c.aead.Seal(dst, c.nonce[:], p, c.aad[:])
}
func (c *testCipher) Open(dst []byte, seq uint64, typ uint8, version uint16, f []byte) ([]byte, error) {
	if len(f) < 16 {
		return nil, errors.New("short")
	}
	c.setup(seq, typ, version, len(f)-16)
	return c.aead.Open(dst, c.nonce[:], f, c.aad[:])
}

// fakeConn replays a fixed peer stream, then io.EOF, and records writes.
type fakeConn struct {
	mu sync.Mutex
	r  io.Reader
	w  bytes.Buffer
}

func (f *fakeConn) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *fakeConn) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Write(b)
}
func (f *fakeConn) written() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.w.Bytes()...)
}
func (f *fakeConn) Close() error                     { return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// peer builds the records the peer sends.
type peer struct {
	buf  bytes.Buffer
	c    *testCipher // nil: plaintext
	seq  uint64
	vers uint16
}

func (p *peer) rec(typ uint8, payload []byte) *peer {
	v := p.vers
	if v == 0 {
		v = versionTLS12
	}
	body := payload
	if p.c != nil {
		body = p.c.Seal(nil, p.seq, typ, v, payload)
		p.seq++
	}
	p.buf.Write([]byte{typ, byte(v >> 8), byte(v), byte(len(body) >> 8), byte(len(body))})
	p.buf.Write(body)
	return p
}

func (p *peer) raw(b ...byte) *peer { p.buf.Write(b); return p }

func hsMsg(typ uint8, body []byte) []byte {
	n := len(body)
	return append([]byte{typ, byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

const (
	keyC2S = 1 // key of the test cipher: peer → us
	keyS2C = 2 // us → peer
)

// newTestConn returns a Conn reading p's stream. established: as after a
// handshake (version fixed, test ciphers both ways).
func newTestConn(t testing.TB, p *peer, isClient, established bool) (*Conn, *fakeConn) {
	fc := &fakeConn{r: bytes.NewReader(p.buf.Bytes())}
	c := newConn(fc, &Config{}, isClient)
	if established {
		c.versionSet = true
		c.in.version, c.out.version = versionTLS12, versionTLS12
		c.in.cipher = newTestCipher(t, keyC2S)
		c.out.cipher = newTestCipher(t, keyS2C)
		c.handshakeComplete.Store(true)
	}
	return c, fc
}

// sentAlerts parses the records we wrote and returns the alerts among them.
func sentAlerts(t *testing.T, b []byte, encrypted bool) [][2]byte {
	t.Helper()
	var out [][2]byte
	oc := newTestCipher(t, keyS2C)
	seq := uint64(0)
	for len(b) >= 5 {
		typ, n := b[0], int(b[3])<<8|int(b[4])
		if len(b) < 5+n {
			t.Fatalf("truncated record in output")
		}
		body := b[5 : 5+n]
		if encrypted {
			var err error
			body, err = oc.Open(nil, seq, typ, versionTLS12, body)
			if err != nil {
				t.Fatalf("cannot open our own record: %v", err)
			}
			seq++
		}
		if typ == recordTypeAlert && len(body) == 2 {
			out = append(out, [2]byte{body[0], body[1]})
		}
		b = b[5+n:]
	}
	return out
}

func wantAlert(t *testing.T, err error, a Alert, remote bool) {
	t.Helper()
	var ae *AlertError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *AlertError (want %s)", err, a)
	}
	if ae.Alert != a || ae.Remote != remote {
		t.Fatalf("got alert %s remote=%v, want %s remote=%v (%v)", ae.Alert, ae.Remote, a, remote, err)
	}
}

func wantSentFatal(t *testing.T, fc *fakeConn, encrypted bool, a Alert) {
	t.Helper()
	al := sentAlerts(t, fc.written(), encrypted)
	if len(al) == 0 || al[len(al)-1] != [2]byte{alertLevelFatal, byte(a)} {
		t.Fatalf("sent alerts %v, want fatal %s last", al, a)
	}
}

func readAll(c *Conn) ([]byte, error) {
	var out []byte
	buf := make([]byte, 100)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

func TestOneByteRecords(t *testing.T) {
	p := &peer{c: newTestCipher(t, keyC2S)}
	for _, b := range []byte("hello") {
		p.rec(recordTypeApplicationData, []byte{b})
	}
	p.rec(recordTypeAlert, []byte{alertLevelWarning, 0})
	c, _ := newTestConn(t, p, false, true)
	got, err := readAll(c)
	if string(got) != "hello" || err != io.EOF {
		t.Fatalf("got %q, %v", got, err)
	}
	// io.EOF sticks.
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("second read: %v", err)
	}
}

func TestMaxRecordAndOverflow(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, maxPlaintext)
	p := &peer{c: newTestCipher(t, keyC2S)}
	p.rec(recordTypeApplicationData, big)
	p.rec(recordTypeApplicationData, append(big, 'y')) // 2^14+1 plaintext: overflow after decryption
	c, fc := newTestConn(t, p, false, true)
	buf := make([]byte, maxPlaintext)
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, big) {
		t.Fatalf("16 KiB record: %v", err)
	}
	_, err := c.Read(buf)
	wantAlert(t, err, ciphersuite.AlertRecordOverflow, false)
	wantSentFatal(t, fc, true, ciphersuite.AlertRecordOverflow)
	// The fatal error sticks for Read and Write.
	if _, err2 := c.Read(buf); err2 != err {
		t.Fatalf("later Read: %v", err2)
	}
	if _, err2 := c.Write([]byte("x")); err2 != err {
		t.Fatalf("later Write: %v", err2)
	}
}

func TestOversizeRecordHeader(t *testing.T) {
	for _, tc := range []struct {
		name        string
		established bool
		n           int
	}{
		{"plaintext", false, maxPlaintext + 1},
		{"ciphertext", true, maxCiphertext + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &peer{}
			p.raw(recordTypeHandshake, 3, 3, byte(tc.n>>8), byte(tc.n))
			c, fc := newTestConn(t, p, false, tc.established)
			var err error
			if tc.established {
				_, err = c.Read(make([]byte, 10))
			} else {
				_, err = c.readHandshake()
			}
			wantAlert(t, err, ciphersuite.AlertRecordOverflow, false)
			wantSentFatal(t, fc, tc.established, ciphersuite.AlertRecordOverflow)
		})
	}
}

func TestHandshakeReassembly(t *testing.T) {
	m1 := hsMsg(2, bytes.Repeat([]byte{1}, 300))
	m2 := hsMsg(11, []byte{1, 2, 3})
	m3 := hsMsg(14, nil)
	m4 := hsMsg(12, bytes.Repeat([]byte{4}, 40000)) // spans 4 records
	p := &peer{}
	p.rec(recordTypeHandshake, m1[:1]).rec(recordTypeHandshake, m1[1:10]).rec(recordTypeHandshake, m1[10:])
	p.rec(recordTypeHandshake, append(append(append([]byte{}, m2...), m3...), m4[:100]...))
	p.rec(recordTypeHandshake, m4[100:maxPlaintext+100]).rec(recordTypeHandshake, m4[maxPlaintext+100:2*maxPlaintext+100])
	p.rec(recordTypeHandshake, m4[2*maxPlaintext+100:])
	c, _ := newTestConn(t, p, true, false)
	for i, want := range [][]byte{m1, m2, m3, m4} {
		got, err := c.readHandshake()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("message %d: %v (len %d, want %d)", i, err, len(got), len(want))
		}
	}
	if _, err := c.readHandshake(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("at end: %v", err)
	}
}

func TestHandshakeMessageTooLarge(t *testing.T) {
	p := &peer{}
	p.rec(recordTypeHandshake, []byte{1, 0x01, 0x00, 0x01}) // 65537-byte body
	c, fc := newTestConn(t, p, false, false)
	_, err := c.readHandshake()
	wantAlert(t, err, ciphersuite.AlertIllegalParameter, false)
	wantSentFatal(t, fc, false, ciphersuite.AlertIllegalParameter)
}

func TestBadRecordMAC(t *testing.T) {
	p := &peer{c: newTestCipher(t, keyC2S)}
	p.rec(recordTypeApplicationData, []byte("hello"))
	b := p.buf.Bytes()
	b[len(b)-1] ^= 1
	c, fc := newTestConn(t, p, false, true)
	_, err := c.Read(make([]byte, 10))
	wantAlert(t, err, ciphersuite.AlertBadRecordMAC, false)
	wantSentFatal(t, fc, true, ciphersuite.AlertBadRecordMAC)
}

func TestPlaintextAfterCCS(t *testing.T) {
	// After ChangeCipherSpec the peer's plaintext Finished does not authenticate.
	p := &peer{}
	p.rec(recordTypeChangeCipherSpec, []byte{1})
	p.rec(recordTypeHandshake, hsMsg(20, make([]byte, 12)))
	c, fc := newTestConn(t, p, false, false)
	c.versionSet = true
	c.in.version = versionTLS12
	if err := c.readChangeCipherSpec(newTestCipher(t, keyC2S)); err != nil {
		t.Fatal(err)
	}
	_, err := c.readHandshake()
	wantAlert(t, err, ciphersuite.AlertBadRecordMAC, false)
	wantSentFatal(t, fc, false, ciphersuite.AlertBadRecordMAC)
}

func TestCCS(t *testing.T) {
	t.Run("WrongPlace", func(t *testing.T) {
		p := &peer{}
		p.rec(recordTypeChangeCipherSpec, []byte{1})
		c, fc := newTestConn(t, p, false, false)
		_, err := c.readHandshake()
		wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
		wantSentFatal(t, fc, false, ciphersuite.AlertUnexpectedMessage)
	})
	t.Run("PartialMessageBuffered", func(t *testing.T) {
		p := &peer{}
		m := hsMsg(16, make([]byte, 20))
		p.rec(recordTypeHandshake, m[:10]).rec(recordTypeChangeCipherSpec, []byte{1})
		c, fc := newTestConn(t, p, false, false)
		if err := c.readRecord(); err != nil {
			t.Fatal(err)
		}
		err := c.readChangeCipherSpec(newTestCipher(t, keyC2S))
		wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
		wantSentFatal(t, fc, false, ciphersuite.AlertUnexpectedMessage)
	})
	t.Run("PartialMessageInSameFlight", func(t *testing.T) {
		// The partial message arrives while ReadChangeCipherSpec waits.
		p := &peer{}
		p.rec(recordTypeHandshake, hsMsg(16, make([]byte, 20))[:10]).rec(recordTypeChangeCipherSpec, []byte{1})
		c, fc := newTestConn(t, p, false, false)
		err := c.readChangeCipherSpec(newTestCipher(t, keyC2S))
		wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
		wantSentFatal(t, fc, false, ciphersuite.AlertUnexpectedMessage)
	})
	t.Run("BadBody", func(t *testing.T) {
		for _, body := range [][]byte{{2}, {1, 1}} {
			p := &peer{}
			p.rec(recordTypeChangeCipherSpec, body)
			c, _ := newTestConn(t, p, false, false)
			err := c.readChangeCipherSpec(newTestCipher(t, keyC2S))
			wantAlert(t, err, ciphersuite.AlertDecodeError, false)
		}
	})
	t.Run("AfterHandshake", func(t *testing.T) {
		p := &peer{c: newTestCipher(t, keyC2S)}
		p.rec(recordTypeChangeCipherSpec, []byte{1})
		c, _ := newTestConn(t, p, false, true)
		_, err := c.Read(make([]byte, 10))
		wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
	})
	t.Run("SwitchesCipherAndResetsSeq", func(t *testing.T) {
		p := &peer{}
		p.rec(recordTypeChangeCipherSpec, []byte{1})
		p.c = newTestCipher(t, keyC2S)
		p.rec(recordTypeHandshake, hsMsg(20, make([]byte, 12)))
		c, _ := newTestConn(t, p, false, false)
		c.in.seq = 77
		if err := c.readChangeCipherSpec(newTestCipher(t, keyC2S)); err != nil {
			t.Fatal(err)
		}
		if m, err := c.readHandshake(); err != nil || m[0] != 20 {
			t.Fatalf("Finished after CCS: %v", err)
		}
	})
}

func TestZeroLengthRecords(t *testing.T) {
	for _, typ := range []uint8{recordTypeHandshake, recordTypeAlert, recordTypeChangeCipherSpec} {
		p := &peer{}
		p.rec(typ, nil)
		c, _ := newTestConn(t, p, false, false)
		_, err := c.readHandshake()
		wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
	}
	// Up to maxEmptyRecords empty application data records in a row are fine.
	p := &peer{c: newTestCipher(t, keyC2S)}
	for range maxEmptyRecords {
		p.rec(recordTypeApplicationData, nil)
	}
	p.rec(recordTypeApplicationData, []byte("a"))
	for range maxEmptyRecords + 1 {
		p.rec(recordTypeApplicationData, nil)
	}
	c, fc := newTestConn(t, p, false, true)
	got, err := readAll(c)
	if string(got) != "a" {
		t.Fatalf("got %q", got)
	}
	wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
	wantSentFatal(t, fc, true, ciphersuite.AlertUnexpectedMessage)
}

func TestApplicationDataBeforeFinished(t *testing.T) {
	p := &peer{}
	p.rec(recordTypeChangeCipherSpec, []byte{1})
	p.c = newTestCipher(t, keyC2S)
	p.rec(recordTypeApplicationData, []byte("early"))
	c, fc := newTestConn(t, p, false, false)
	if err := c.readChangeCipherSpec(newTestCipher(t, keyC2S)); err != nil {
		t.Fatal(err)
	}
	_, err := c.readHandshake()
	wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
	wantSentFatal(t, fc, false, ciphersuite.AlertUnexpectedMessage)

	// Plaintext application data during the handshake, too.
	p = &peer{}
	p.rec(recordTypeApplicationData, []byte("early"))
	c, _ = newTestConn(t, p, false, false)
	_, err = c.readHandshake()
	wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
}

func TestRenegotiationRefused(t *testing.T) {
	for _, isClient := range []bool{true, false} {
		p := &peer{c: newTestCipher(t, keyC2S)}
		p.rec(recordTypeApplicationData, []byte("one "))
		if isClient {
			p.rec(recordTypeHandshake, hsMsg(typeHelloRequest, nil))
		} else {
			ch := hsMsg(typeClientHello, bytes.Repeat([]byte{7}, 100))
			p.rec(recordTypeHandshake, ch[:50]).rec(recordTypeHandshake, ch[50:])
		}
		p.rec(recordTypeApplicationData, []byte("two"))
		p.rec(recordTypeAlert, []byte{alertLevelWarning, 0})
		c, fc := newTestConn(t, p, isClient, true)
		got, err := readAll(c)
		if string(got) != "one two" || err != io.EOF {
			t.Fatalf("client=%v: got %q, %v", isClient, got, err)
		}
		al := sentAlerts(t, fc.written(), true)
		if len(al) != 1 || al[0] != [2]byte{alertLevelWarning, byte(ciphersuite.AlertNoRenegotiation)} {
			t.Fatalf("client=%v: sent alerts %v, want one no_renegotiation warning", isClient, al)
		}
		// Still writable.
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// Any other handshake message after the handshake is fatal.
	p := &peer{c: newTestCipher(t, keyC2S)}
	p.rec(recordTypeHandshake, hsMsg(20, make([]byte, 12)))
	c, _ := newTestConn(t, p, false, true)
	_, err := c.Read(make([]byte, 1))
	wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
}

// Renegotiation requests in a row without application data are answered
// with warnings up to a bound, then refused fatally; data in between resets
// the count.
func TestRenegotiationFlood(t *testing.T) {
	ch := hsMsg(typeClientHello, bytes.Repeat([]byte{7}, 60))
	// Interleaved with data: all tolerated.
	p := &peer{c: newTestCipher(t, keyC2S)}
	for i := 0; i < 3*maxRenegRequests; i++ {
		p.rec(recordTypeHandshake, ch).rec(recordTypeApplicationData, []byte("d"))
	}
	p.rec(recordTypeAlert, []byte{alertLevelWarning, 0})
	c, _ := newTestConn(t, p, false, true)
	got, err := readAll(c)
	if len(got) != 3*maxRenegRequests || err != io.EOF {
		t.Fatalf("interleaved: got %d bytes, %v", len(got), err)
	}
	// A flood: fatal no_renegotiation after maxRenegRequests warnings.
	p = &peer{c: newTestCipher(t, keyC2S)}
	for i := 0; i <= maxRenegRequests; i++ {
		p.rec(recordTypeHandshake, ch)
	}
	c, fc := newTestConn(t, p, false, true)
	_, err = c.Read(make([]byte, 1))
	wantAlert(t, err, ciphersuite.AlertNoRenegotiation, false)
	al := sentAlerts(t, fc.written(), true)
	if len(al) != maxRenegRequests+1 || al[maxRenegRequests] != [2]byte{alertLevelFatal, byte(ciphersuite.AlertNoRenegotiation)} {
		t.Fatalf("flood: sent alerts %v, want %d warnings then a fatal no_renegotiation", al, maxRenegRequests)
	}
}

func TestHelloRequestDroppedDuringClientHandshake(t *testing.T) {
	sh := hsMsg(2, []byte{3, 3})
	p := &peer{}
	p.rec(recordTypeHandshake, append(hsMsg(typeHelloRequest, nil), sh...))
	c, _ := newTestConn(t, p, true, false)
	m, err := c.readHandshake()
	if err != nil || !bytes.Equal(m, sh) {
		t.Fatalf("got %x, %v", m, err)
	}
}

func TestTruncationVersusCloseNotify(t *testing.T) {
	p := &peer{c: newTestCipher(t, keyC2S)}
	p.rec(recordTypeApplicationData, []byte("data"))
	c, _ := newTestConn(t, p, false, true)
	got, err := readAll(c)
	if string(got) != "data" || err == io.EOF || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated stream: %q, %v", got, err)
	}
	// Truncation in the middle of a record.
	p = &peer{c: newTestCipher(t, keyC2S)}
	p.rec(recordTypeApplicationData, []byte("data"))
	p.buf.Truncate(p.buf.Len() - 3)
	c, _ = newTestConn(t, p, false, true)
	if _, err := readAll(c); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("mid-record truncation: %v", err)
	}
}

func TestAlerts(t *testing.T) {
	t.Run("FatalReceived", func(t *testing.T) {
		p := &peer{c: newTestCipher(t, keyC2S)}
		p.rec(recordTypeAlert, []byte{alertLevelFatal, byte(ciphersuite.AlertAccessDenied)})
		c, fc := newTestConn(t, p, false, true)
		_, err := c.Read(make([]byte, 1))
		wantAlert(t, err, ciphersuite.AlertAccessDenied, true)
		if _, err2 := c.Write([]byte("x")); err2 != err {
			t.Fatalf("Write after fatal alert: %v", err2)
		}
		if len(fc.written()) != 0 {
			t.Fatal("wrote after receiving a fatal alert")
		}
	})
	t.Run("UnknownWarningsIgnored", func(t *testing.T) {
		p := &peer{c: newTestCipher(t, keyC2S)}
		for range maxWarningAlerts {
			p.rec(recordTypeAlert, []byte{alertLevelWarning, 200})
		}
		p.rec(recordTypeApplicationData, []byte("ok"))
		for range maxWarningAlerts + 1 {
			p.rec(recordTypeAlert, []byte{alertLevelWarning, byte(ciphersuite.AlertUserCanceled)})
		}
		c, _ := newTestConn(t, p, false, true)
		got, err := readAll(c)
		if string(got) != "ok" {
			t.Fatalf("got %q", got)
		}
		wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
	})
	t.Run("NoRenegotiationDuringHandshake", func(t *testing.T) {
		p := &peer{}
		p.rec(recordTypeAlert, []byte{alertLevelWarning, byte(ciphersuite.AlertNoRenegotiation)})
		c, fc := newTestConn(t, p, true, false)
		_, err := c.readHandshake()
		wantAlert(t, err, ciphersuite.AlertHandshakeFailure, false)
		wantSentFatal(t, fc, false, ciphersuite.AlertHandshakeFailure)
	})
	t.Run("Malformed", func(t *testing.T) {
		for _, body := range [][]byte{{1}, {1, 2, 3}, {3, 10}} {
			p := &peer{}
			p.rec(recordTypeAlert, body)
			c, _ := newTestConn(t, p, true, false)
			_, err := c.readHandshake()
			if _, ok := ciphersuite.AlertOf(err); !ok {
				t.Fatalf("alert %x: %v", body, err)
			}
		}
	})
	t.Run("CloseNotifyHalfClose", func(t *testing.T) {
		p := &peer{c: newTestCipher(t, keyC2S)}
		p.rec(recordTypeAlert, []byte{alertLevelWarning, 0})
		c, fc := newTestConn(t, p, false, true)
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("still here")); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("x")); err == nil {
			t.Fatal("Write after CloseWrite succeeded")
		}
		al := sentAlerts(t, fc.written(), true)
		if len(al) != 1 || al[0] != [2]byte{alertLevelWarning, 0} {
			t.Fatalf("sent %v", al)
		}
	})
}

func TestVersionChecks(t *testing.T) {
	for _, tc := range []struct {
		set  bool
		vers uint16
		ok   bool
	}{
		{false, 0x0301, true}, {false, 0x0302, true}, {false, 0x0303, true},
		{false, 0x0300, false}, {false, 0x0304, false}, {false, 0x0203, false},
		{true, 0x0303, true}, {true, 0x0301, false}, {true, 0x0302, false},
	} {
		p := &peer{vers: tc.vers}
		p.rec(recordTypeHandshake, hsMsg(1, []byte{1}))
		c, fc := newTestConn(t, p, false, false)
		if tc.set {
			c.versionSet, c.in.version = true, versionTLS12
		}
		_, err := c.readHandshake()
		if tc.ok {
			if err != nil {
				t.Errorf("version %#x (set=%v): %v", tc.vers, tc.set, err)
			}
			continue
		}
		wantAlert(t, err, ciphersuite.AlertProtocolVersion, false)
		wantSentFatal(t, fc, false, ciphersuite.AlertProtocolVersion)
	}
}

func TestNotTLS(t *testing.T) {
	p := &peer{}
	p.raw([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")...)
	c, _ := newTestConn(t, p, false, false)
	_, err := c.readHandshake()
	wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
}

func TestSequenceNumberWrapRefused(t *testing.T) {
	p := &peer{}
	c, fc := newTestConn(t, p, false, true)
	c.out.seq = math.MaxUint64 - 3
	for i := range 2 {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, errSeqExhausted) {
		t.Fatalf("write at the limit: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, errSeqExhausted) {
		t.Fatalf("write after the limit: %v", err)
	}
	// Check the last record: close_notify with seq 2^64-2.
	w := fc.written()
	oc := newTestCipher(t, keyS2C)
	var seqs []uint64
	for s := uint64(math.MaxUint64 - 3); len(w) > 0; s++ {
		n := int(w[3])<<8 | int(w[4])
		body, err := oc.Open(nil, s, w[0], versionTLS12, w[5:5+n])
		if err != nil {
			t.Fatal(err)
		}
		if w[0] == recordTypeAlert && !bytes.Equal(body, []byte{1, 0}) {
			t.Fatalf("last record %x", body)
		}
		seqs = append(seqs, s)
		w = w[5+n:]
	}
	if len(seqs) != 3 || seqs[2] != math.MaxUint64-1 {
		t.Fatalf("record sequence numbers %v", seqs)
	}

	// Read side: a record at the exhausted counter is refused.
	p = &peer{c: newTestCipher(t, keyC2S), seq: math.MaxUint64}
	p.rec(recordTypeApplicationData, []byte("x"))
	c, _ = newTestConn(t, p, false, true)
	c.in.seq = math.MaxUint64
	_, err := c.Read(make([]byte, 1))
	wantAlert(t, err, ciphersuite.AlertInternalError, false)
}

func TestWriteSplitsRecords(t *testing.T) {
	c, fc := newTestConn(t, &peer{}, false, true)
	data := bytes.Repeat([]byte{9}, 3*maxPlaintext+5)
	if n, err := c.Write(data); n != len(data) || err != nil {
		t.Fatal(n, err)
	}
	w := fc.written()
	var sizes []int
	for len(w) > 0 {
		n := int(w[3])<<8 | int(w[4])
		sizes = append(sizes, n-16)
		w = w[5+n:]
	}
	if len(sizes) != 4 || sizes[0] != maxPlaintext || sizes[3] != 5 {
		t.Fatalf("record sizes %v", sizes)
	}
}

func TestHandshakeFlightCoalescing(t *testing.T) {
	c, fc := newTestConn(t, &peer{}, false, false)
	rl := (*recordLayer)(c)
	rl.SetVersion(versionTLS12)
	big := hsMsg(11, make([]byte, 20000))
	for _, m := range [][]byte{hsMsg(2, []byte{1}), big, hsMsg(14, nil)} {
		if err := rl.WriteHandshake(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := rl.WriteChangeCipherSpec(newTestCipher(t, keyS2C)); err != nil {
		t.Fatal(err)
	}
	if err := rl.WriteHandshake(hsMsg(20, make([]byte, 12))); err != nil {
		t.Fatal(err)
	}
	if len(fc.written()) != 0 {
		t.Fatal("wrote before Flush")
	}
	if err := rl.Flush(); err != nil {
		t.Fatal(err)
	}
	// Read it back with our own record layer.
	p := &peer{}
	p.buf.Write(fc.written())
	r, _ := newTestConn(t, p, true, false)
	r.versionSet, r.in.version = true, versionTLS12
	for _, want := range []int{2, 11, 14} {
		m, err := r.readHandshake()
		if err != nil || int(m[0]) != want {
			t.Fatalf("want type %d: %v", want, err)
		}
	}
	if err := r.readChangeCipherSpec(newTestCipher(t, keyS2C)); err != nil {
		t.Fatal(err)
	}
	if m, err := r.readHandshake(); err != nil || m[0] != 20 {
		t.Fatalf("Finished: %v", err)
	}
}

func TestSteadyStateAllocs(t *testing.T) {
	const n = 200
	msg := bytes.Repeat([]byte{5}, maxPlaintext)
	p := &peer{c: newTestCipher(t, keyC2S)}
	for range n + 1 {
		p.rec(recordTypeApplicationData, msg)
	}
	c, _ := newTestConn(t, p, false, true)
	buf := make([]byte, maxPlaintext)
	io.ReadFull(c, buf) // warm up buffers
	if a := testing.AllocsPerRun(n-1, func() {
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Read: %v allocs per record", a)
	}
	w, _ := newTestConn(t, &peer{}, false, true)
	w.conn = &discardConn{}
	w.Write(msg)
	if a := testing.AllocsPerRun(100, func() { w.Write(msg) }); a != 0 {
		t.Errorf("Write: %v allocs per record", a)
	}
}

type discardConn struct{ fakeConn }

func (*discardConn) Write(b []byte) (int, error) { return len(b), nil }

func TestHelloRequestFloodDuringClientHandshake(t *testing.T) {
	p := &peer{}
	for range maxHelloRequests + 1 {
		p.rec(recordTypeHandshake, hsMsg(typeHelloRequest, nil))
	}
	c, fc := newTestConn(t, p, true, false)
	_, err := c.readHandshake()
	wantAlert(t, err, ciphersuite.AlertUnexpectedMessage, false)
	wantSentFatal(t, fc, false, ciphersuite.AlertUnexpectedMessage)
}
