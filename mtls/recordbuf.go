package mtls

import (
	"io"
	"net"
)

// readBuffer is the read side's buffering: the raw input, the plaintext of
// the last protected record, application data not yet returned by Read, the
// reassembly of handshake messages, and the wait for readability that lets
// an idle connection hold none of these. Its buffers come from the pools
// (see bufpool.go) and are held only while they buffer something. It is
// guarded by the read side's lock.
type readBuffer struct {
	rawp *[]byte
	raw  []byte // raw input buffer (*rawp or nil); unread bytes in raw[rpos:rend]
	rpos int
	rend int

	plainp  *[]byte
	plain   []byte // decryption buffer (*plainp or nil)
	plainHi int    // plain[:plainHi] may hold plaintext

	input []byte // application data not yet returned by Read

	handp  *[]byte // pooled buffer behind hand (while it fits)
	handHi int     // (*handp)[:handHi] may hold handshake bytes
	hand   []byte  // handshake reassembly buffer

	ready readiness // waiting for the peer without a buffer

	rawPlain bool // raw held unprotected records: clear it before reuse
	bigIn    bool // a full-size record arrived once: take full-size raw buffers
}

// release returns the buffers to their pools once nothing is buffered in
// them: the plaintext buffer as soon as all its application data was read,
// the raw buffer when it holds no partial record either, the handshake
// buffer when no partial message is left. An idle connection thus holds no
// record buffer. Buffers are cleared before they go back (the plaintext
// and handshake ones always; the raw one if it held unprotected records).
func (b *readBuffer) release() {
	if len(b.input) != 0 {
		return
	}
	b.input = nil
	if b.plainp != nil {
		putBuf(b.plainp, b.plainHi)
		b.plainp, b.plain, b.plainHi = nil, nil, 0
	}
	if b.rawp != nil && b.rpos == b.rend {
		b.putRaw()
		b.rawp, b.raw, b.rawPlain = nil, nil, false
		b.rpos, b.rend = 0, 0
	}
	if len(b.hand) == 0 {
		b.releaseHand()
	}
}

// drop returns the buffers to their pools whatever partial record or
// message they hold, once the read direction has ended for good; only
// application data still to be read keeps them.
func (b *readBuffer) drop() {
	if len(b.input) != 0 {
		return // application data still to be read points into plain
	}
	b.rpos, b.rend = 0, 0
	b.release()
	b.releaseHand()
}

// putRaw returns the raw buffer to its pool, cleared if it held
// unprotected records.
func (b *readBuffer) putRaw() {
	used := 0
	if b.rawPlain {
		used = len(b.raw)
	}
	putBuf(b.rawp, used)
}

// releaseHand drops the handshake message buffer, returning its pooled
// buffer (cleared: handshake messages are plaintext).
func (b *readBuffer) releaseHand() {
	b.hand = nil
	if b.handp != nil {
		putBuf(b.handp, b.handHi)
		b.handp, b.handHi = nil, 0
	}
}

// fill makes sure at least n bytes of raw input from conn are buffered.
// With idle, the connection is established and may stay quiet for hours:
// it waits for the peer without holding a buffer. Without it (during the
// handshake, when the peer is about to answer) the buffer is kept and read
// directly: one read where data has come instead of a non-blocking read, a
// peek and a read. unprotected says the records are not protected, so the
// raw buffer must be cleared before it goes back.
func (b *readBuffer) fill(conn net.Conn, n int, idle, unprotected bool) error {
	if b.rawp != nil && b.rpos == b.rend && len(b.input) == 0 && idle {
		// Buffers kept from the last record and nothing of the next one
		// buffered: take what the socket already holds without blocking.
		// Only if the peer is quiet do the buffers go back before the
		// wait, so a bulk stream keeps them from record to record (no
		// extra system call, pool round trip or clearing per record) and
		// a connection waiting for its peer holds none.
		b.rpos, b.rend = 0, 0
		got, something := b.ready.readNow(conn, b.raw)
		b.rend = got
		if !something {
			b.release()
		}
		if err := b.ready.takeErr(conn); err != nil {
			return err
		}
	}
	if b.rawp == nil {
		// Nothing is buffered: wait for the peer without holding a buffer.
		if idle {
			if err := b.ready.wait(conn); err != nil {
				return err
			}
		}
		size := smallBufLen
		if n > smallBufLen || b.bigIn {
			size = rawBufLen
		}
		b.rawp = getBuf(size)
		b.raw = *b.rawp
		b.rpos, b.rend = 0, 0
	} else if n > len(b.raw) {
		// Buffers start small (handshakes, small records) and grow to the
		// full size when a large record arrives; from then on this
		// connection takes a full-size buffer at once.
		bp := getBuf(rawBufLen)
		rend := copy(*bp, b.raw[b.rpos:b.rend])
		b.putRaw() // rawPlain stays: the bytes moved may be unprotected
		b.rawp, b.raw = bp, *bp
		b.rpos, b.rend = 0, rend
		b.bigIn = true
	}
	if unprotected {
		b.rawPlain = true
	}
	for empty := 0; b.rend-b.rpos < n; {
		if b.rpos+n > len(b.raw) {
			copy(b.raw, b.raw[b.rpos:b.rend])
			b.rend -= b.rpos
			b.rpos = 0
		}
		m, err := conn.Read(b.raw[b.rend:])
		b.rend += m
		if err != nil {
			if b.rend-b.rpos >= n {
				return nil
			}
			return err
		}
		if m == 0 {
			if empty++; empty > 100 {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// consume marks the n bytes of the record at the front of the raw input
// as read. Unprotected data still points into raw, which stays intact
// until the next fill.
func (b *readBuffer) consume(n int) {
	b.rpos += n
	if b.rpos == b.rend {
		b.rpos, b.rend = 0, 0
	}
}

// plainFor returns a buffer for the plaintext of a protected fragment of n
// bytes (which opens to at most n bytes).
func (b *readBuffer) plainFor(n int) []byte {
	if len(b.plain) < n {
		if b.plainp != nil {
			putBuf(b.plainp, b.plainHi)
		}
		b.plainp = getBuf(n)
		b.plain, b.plainHi = *b.plainp, 0
	}
	b.plainHi = max(b.plainHi, n)
	return b.plain[:0]
}

// appendHand appends handshake record data to the reassembly buffer, which
// is pooled rather than allocated per connection; a message too long for
// it moves to the heap through append.
func (b *readBuffer) appendHand(data []byte) {
	if b.hand == nil {
		b.handp = getBuf(smallBufLen)
		b.hand = (*b.handp)[:0]
	}
	b.hand = append(b.hand, data...)
	if b.handp != nil && len(b.hand) <= cap(*b.handp) && &b.hand[:1][0] == &(*b.handp)[0] {
		b.handHi = max(b.handHi, len(b.hand))
	}
}

// writeBuffer is the write side's buffering: the pooled buffer records are
// sealed into for one write, and the handshake flight being assembled. It
// is guarded by the write side's lock.
type writeBuffer struct {
	outp    *[]byte
	buf     []byte // sealed records being written (*outp or nil)
	flight  []byte // the queued handshake flight, sealed
	pending []byte // handshake messages not yet sealed into records
	alert   [2]byte
}

// ensure makes room in buf for n bytes of sealed records (n plaintext
// bytes as one record).
func (w *writeBuffer) ensure(n int) {
	if need := recordHeaderLen + n + maxSealOverhead; cap(w.buf) < need {
		w.release()
		w.outp = getBuf(need)
		w.buf = (*w.outp)[:0]
	}
}

// release returns the output buffer to its pool. It holds only sealed
// records (ciphertext, or alerts sent before the cipher was on), so it is
// not cleared.
func (w *writeBuffer) release() {
	if w.outp != nil {
		putBuf(w.outp, 0)
		w.outp, w.buf = nil, nil
	}
}
