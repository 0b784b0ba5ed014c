package mtls

// The record layer (RFC 5246 §6) and the alerts it sends:
//
//   - unknown record type, CCS outside ReadChangeCipherSpec, CCS with
//     handshake data buffered, handshake data where CCS is due, application
//     data before the handshake completed, a zero-length handshake, alert or
//     CCS record, more than maxEmptyRecords empty application data records or
//     maxWarningAlerts ignored warnings in a row, a post-handshake handshake
//     message other than a renegotiation request: unexpected_message;
//   - record version outside 0x0301..0x0303 before SetVersion, or different
//     from the fixed version after it: protocol_version;
//   - length over 2^14 (plaintext) or 2^14+2048 (protected), or a decrypted
//     fragment over 2^14: record_overflow;
//   - a record that does not authenticate: bad_record_mac;
//   - CCS body other than {1}, alert body not 2 bytes: decode_error;
//   - a handshake message over maxHandshakeMsg: illegal_parameter;
//   - a no_renegotiation warning during the handshake: handshake_failure;
//   - a renegotiation request after the handshake (ClientHello at a server,
//     HelloRequest at a client): a no_renegotiation warning, nothing else.
//
// Sequence numbers never wrap and 2^64-1 is never used: the write side sends
// data up to 2^64-3 and a final close_notify at 2^64-2; the read side
// refuses a record numbered 2^64-1 (internal_error).

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/milagro-go/milagro/ciphersuite"
)

// Record layer limits and constants (RFC 5246 §6.2).
const (
	recordTypeChangeCipherSpec uint8 = 20
	recordTypeAlert            uint8 = 21
	recordTypeHandshake        uint8 = 22
	recordTypeApplicationData  uint8 = 23

	recordHeaderLen  = 5
	maxPlaintext     = 1 << 14             // TLSPlaintext.length limit
	maxCiphertext    = maxPlaintext + 2048 // TLSCiphertext.length limit
	maxRecordLen     = recordHeaderLen + maxCiphertext
	maxHandshakeMsg  = 64 << 10 // largest handshake message body we reassemble
	maxEmptyRecords  = 16       // zero-length application data records in a row
	maxWarningAlerts = 5        // ignored warning alerts in a row
	maxHelloRequests = 8        // HelloRequests dropped in a row during a handshake
	rawBufLen        = 2 * maxRecordLen
	smallBufLen      = 4096 // initial buffer size
	maxSealOverhead  = 256  // generous bound on RecordCipher.Overhead()

	versionTLS10 uint16 = 0x0301
	versionTLS12 uint16 = 0x0303

	alertLevelWarning = 1
	alertLevelFatal   = 2

	typeHelloRequest = 0
	typeClientHello  = 1
)

// Errors of the record layer that carry no alert.
var (
	errShutdown     = errors.New("mtls: protocol is shutdown")
	errSeqExhausted = errors.New("mtls: record sequence number exhausted; connection closed")
)

// writeFailure is what every Write returns once a write to the underlying
// connection failed: a record may have gone out in part, so nothing more
// can follow it on this connection. It reads as its cause (errors.Is and
// errors.As reach the cause) and is a net.Error: a timeout if the cause
// was one, never temporary, since retrying cannot succeed.
type writeFailure struct{ cause error }

func (f writeFailure) Error() string   { return f.cause.Error() }
func (f writeFailure) Unwrap() error   { return f.cause }
func (f writeFailure) Timeout() bool   { return isTimeout(f.cause) }
func (f writeFailure) Temporary() bool { return false }

// permanent marks err, a failed write to the underlying connection, as
// ending the write side (see writeFailure).
func permanent(err error) error { return writeFailure{cause: err} }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// fatalErr returns the connection's fatal alert error, if one was sent or received.
func (c *Conn) fatalErr() error {
	if e := c.fatal.Load(); e != nil {
		return e
	}
	return nil
}

// setFatal records err as the connection's fatal error (first one wins).
func (c *Conn) setFatal(err *AlertError) *AlertError {
	if c.fatal.CompareAndSwap(nil, err) {
		return err
	}
	return c.fatal.Load()
}

// fail sends fatal alert a (if no fatal alert was sent or received before)
// and returns the resulting local *AlertError. Must not hold c.out.
func (c *Conn) fail(a Alert, format string, args ...any) error {
	err := &AlertError{Alert: a, Err: fmt.Errorf(format, args...)}
	return c.sendFatal(err)
}

// sendFatal sends err's alert as a fatal alert unless the connection already
// failed, and makes it the connection's error. Must not hold c.out.
func (c *Conn) sendFatal(err *AlertError) error {
	if prev := c.fatal.Load(); prev != nil {
		return prev
	}
	c.out.Lock()
	if c.fatal.Load() == nil && c.out.err == nil {
		c.sendAlertLocked(alertLevelFatal, err.Alert)
	}
	c.out.Unlock()
	return c.setFatal(err)
}

// sendAlertLocked writes one alert record immediately. c.out must be held.
func (c *Conn) sendAlertLocked(level uint8, a Alert) error {
	if c.out.err != nil {
		return c.out.err
	}
	if c.closeNotifySent {
		return nil // nothing may follow our close_notify
	}
	if c.out.spare() == 0 {
		c.out.err = errSeqExhausted
		return c.out.err
	}
	w := &c.wbuf
	w.alert[0], w.alert[1] = level, uint8(a)
	w.ensure(len(w.alert))
	w.buf = c.out.seal(w.buf[:0], recordTypeAlert, w.alert[:])
	_, err := c.conn.Write(w.buf)
	w.release()
	if err != nil {
		c.out.err = permanent(err)
		return c.out.err
	}
	return nil
}

// checkWriteSeqLocked refuses to use the last sequence numbers: the record
// layer never wraps. When the counter is nearly exhausted it sends a final
// close_notify (using the one sequence number it reserved for that) and
// closes the write direction.
func (c *Conn) checkWriteSeqLocked() error {
	if c.out.spare() <= 1 {
		if c.out.err == nil {
			c.sendAlertLocked(alertLevelWarning, ciphersuite.AlertCloseNotify)
			c.closeNotifySent = true
			if c.out.err == nil {
				c.out.err = errSeqExhausted
			}
		}
		return errSeqExhausted
	}
	return nil
}

// writeRecordLocked seals data (at most maxPlaintext bytes) as one record of
// type typ and writes it. c.out must be held.
func (c *Conn) writeRecordLocked(typ uint8, data []byte) error {
	if err := c.checkWriteSeqLocked(); err != nil {
		return err
	}
	c.wbuf.ensure(len(data))
	c.wbuf.buf = c.out.seal(c.wbuf.buf[:0], typ, data)
	_, err := c.conn.Write(c.wbuf.buf)
	c.wbuf.release()
	if err != nil {
		c.out.err = permanent(err)
		return c.out.err
	}
	return nil
}

// fill makes sure at least n bytes of raw input are buffered. Once the
// handshake is complete the connection may stay quiet for hours, and waits
// for its peer holding no buffer. c.in must be held.
func (c *Conn) fill(n int) error {
	return c.rbuf.fill(c.conn, n, c.handshakeComplete.Load(), !c.in.protected())
}

// readErr turns an error of the underlying connection into the record
// layer's error and makes it permanent unless it is a timeout.
func (c *Conn) readErr(err error) error {
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("mtls: connection truncated: peer closed the connection without close_notify: %w", io.ErrUnexpectedEOF)
	} else if isTimeout(err) {
		return err
	}
	c.in.err = err
	return err
}

// localFail sends a fatal alert, records it as the read error and returns it.
// c.in must be held.
func (c *Conn) localFail(a Alert, format string, args ...any) error {
	err := c.fail(a, format, args...)
	c.in.err = err
	return err
}

// readRecord reads and processes one record; see readRecordOrCCS.
func (c *Conn) readRecord() error { return c.readRecordOrCCS(false) }

// readRecordOrCCS reads one record and processes it: application data is left
// in c.rbuf.input, handshake data is appended to c.rbuf.hand, alerts are handled here.
// A ChangeCipherSpec is accepted only when expectCCS (the caller switches
// ciphers); with expectCCS only a ChangeCipherSpec or an alert is accepted.
// It returns nil after a record that needs no further action by the caller
// (e.g. an ignored warning alert). c.in must be held.
func (c *Conn) readRecordOrCCS(expectCCS bool) error {
	err := c.readOneRecord(expectCCS)
	if err != nil && c.in.err != nil {
		// The read direction is over for good (close_notify, a fatal
		// alert, a broken connection): nothing will be read again, so the
		// input buffers go back to their pools now rather than to the
		// garbage collector with the connection. Without this, a mass
		// close of idle connections makes each take fresh buffers.
		c.rbuf.drop()
	}
	return err
}

func (c *Conn) readOneRecord(expectCCS bool) error {
	if err := c.fatalErr(); err != nil {
		return err
	}
	if c.in.err != nil {
		return c.in.err
	}
	handshakeComplete := c.handshakeComplete.Load()
	rb := &c.rbuf

	if err := c.fill(recordHeaderLen); err != nil {
		return c.readErr(err)
	}
	hdr := rb.raw[rb.rpos : rb.rpos+recordHeaderLen]
	typ := hdr[0]
	vers := uint16(hdr[1])<<8 | uint16(hdr[2])
	n := int(hdr[3])<<8 | int(hdr[4])

	if typ < recordTypeChangeCipherSpec || typ > recordTypeApplicationData {
		if !c.sawRecord && looksLikeHTTP(hdr) {
			return c.localFail(ciphersuite.AlertUnexpectedMessage, "first record does not look like a TLS handshake (plain HTTP?)")
		}
		return c.localFail(ciphersuite.AlertUnexpectedMessage, "unknown record type %d", typ)
	}
	if c.versionSet {
		if vers != c.in.version {
			return c.localFail(ciphersuite.AlertProtocolVersion, "record version %#04x, want %#04x", vers, c.in.version)
		}
	} else if vers < versionTLS10 || vers > versionTLS12 {
		return c.localFail(ciphersuite.AlertProtocolVersion, "unsupported record version %#04x", vers)
	}
	if !c.in.protected() && n > maxPlaintext || n > maxCiphertext {
		return c.localFail(ciphersuite.AlertRecordOverflow, "record of %d bytes exceeds the limit", n)
	}
	c.sawRecord = true
	if err := c.fill(recordHeaderLen + n); err != nil {
		return c.readErr(err)
	}
	fragment := rb.raw[rb.rpos+recordHeaderLen : rb.rpos+recordHeaderLen+n]
	data := fragment
	if c.in.protected() {
		if c.in.spare() == 0 {
			return c.localFail(ciphersuite.AlertInternalError, "read sequence number exhausted")
		}
		var err error
		data, err = c.in.open(rb.plainFor(n), typ, vers, fragment)
		if err != nil {
			if !handshakeComplete {
				// The first protected record is the peer's Finished: the
				// two sides derived different keys.
				return c.localFail(ciphersuite.AlertBadRecordMAC, "the peer's Finished record failed authentication: the two sides derived different keys (mismatched credentials, or a handshake altered in transit)")
			}
			return c.localFail(ciphersuite.AlertBadRecordMAC, "record authentication failed")
		}
		if len(data) > maxPlaintext {
			return c.localFail(ciphersuite.AlertRecordOverflow, "decrypted record of %d bytes exceeds the limit", len(data))
		}
	}
	rb.consume(recordHeaderLen + n)

	if len(data) == 0 && typ != recordTypeApplicationData {
		return c.localFail(ciphersuite.AlertUnexpectedMessage, "zero-length record of type %d", typ)
	}

	switch typ {
	case recordTypeAlert:
		return c.handleAlert(data, handshakeComplete)

	case recordTypeChangeCipherSpec:
		if !expectCCS {
			return c.localFail(ciphersuite.AlertUnexpectedMessage, "unexpected ChangeCipherSpec")
		}
		if len(data) != 1 || data[0] != 1 {
			return c.localFail(ciphersuite.AlertDecodeError, "malformed ChangeCipherSpec")
		}
		if len(rb.hand) != 0 {
			return c.localFail(ciphersuite.AlertUnexpectedMessage, "ChangeCipherSpec with a partial handshake message buffered")
		}
		c.warnings = 0
		c.gotCCS = true
		return nil

	case recordTypeApplicationData:
		if expectCCS || !handshakeComplete || !c.in.protected() {
			return c.localFail(ciphersuite.AlertUnexpectedMessage, "application data before the handshake completed")
		}
		if len(data) == 0 {
			c.emptyRecords++
			if c.emptyRecords > maxEmptyRecords {
				return c.localFail(ciphersuite.AlertUnexpectedMessage, "too many zero-length application data records")
			}
			return nil
		}
		c.emptyRecords, c.warnings = 0, 0
		rb.input = data
		return nil

	default: // handshake
		if expectCCS {
			return c.localFail(ciphersuite.AlertUnexpectedMessage, "handshake message where ChangeCipherSpec was expected")
		}
		rb.appendHand(data)
		c.emptyRecords, c.warnings = 0, 0
		return nil
	}
}

// handleAlert processes the body of an alert record. c.in must be held.
func (c *Conn) handleAlert(data []byte, handshakeComplete bool) error {
	if len(data) != 2 {
		return c.localFail(ciphersuite.AlertDecodeError, "alert record of %d bytes", len(data))
	}
	level, a := data[0], Alert(data[1])
	if a == ciphersuite.AlertCloseNotify {
		c.in.err = io.EOF
		return io.EOF
	}
	switch level {
	case alertLevelWarning:
		if a == ciphersuite.AlertNoRenegotiation && !handshakeComplete {
			return c.localFail(ciphersuite.AlertHandshakeFailure, "peer answered the handshake with a no_renegotiation warning")
		}
		c.warnings++
		if c.warnings > maxWarningAlerts {
			return c.localFail(ciphersuite.AlertUnexpectedMessage, "too many warning alerts (last: %s)", a)
		}
		if l := c.logger(); l != nil {
			l.Debug("mtls: ignoring warning alert", "alert", a.String())
		}
		return nil
	case alertLevelFatal:
		err := c.setFatal(&AlertError{Alert: a, Remote: true})
		c.in.err = err
		return err
	default:
		return c.localFail(ciphersuite.AlertIllegalParameter, "alert with unknown level %d", level)
	}
}

// nextHandshakeMsg returns a copy of the next whole buffered handshake
// message, or nil if none is complete yet. c.in must be held.
func (c *Conn) nextHandshakeMsg() ([]byte, error) {
	if len(c.rbuf.hand) < 4 {
		return nil, nil
	}
	n := int(c.rbuf.hand[1])<<16 | int(c.rbuf.hand[2])<<8 | int(c.rbuf.hand[3])
	if n > maxHandshakeMsg {
		return nil, c.localFail(ciphersuite.AlertIllegalParameter, "handshake message of %d bytes exceeds the limit of %d", n, maxHandshakeMsg)
	}
	if len(c.rbuf.hand) < 4+n {
		return nil, nil
	}
	msg := make([]byte, 4+n)
	copy(msg, c.rbuf.hand)
	rest := copy(c.rbuf.hand, c.rbuf.hand[4+n:])
	c.rbuf.hand = c.rbuf.hand[:rest]
	return msg, nil
}

// readHandshake implements handshake.RecordLayer.ReadHandshake. c.in is held
// by the handshake.
func (c *Conn) readHandshake() ([]byte, error) {
	for dropped := 0; ; {
		msg, err := c.nextHandshakeMsg()
		if err != nil {
			return nil, err
		}
		if msg != nil {
			if c.isClient && msg[0] == typeHelloRequest && len(msg) == 4 {
				// Dropped, never hashed.
				if dropped++; dropped > maxHelloRequests {
					return nil, c.localFail(ciphersuite.AlertUnexpectedMessage, "too many HelloRequest messages")
				}
				continue
			}
			return msg, nil
		}
		if err := c.readRecord(); err != nil {
			return nil, err
		}
	}
}

// readChangeCipherSpec implements handshake.RecordLayer.ReadChangeCipherSpec.
func (c *Conn) readChangeCipherSpec(next ciphersuite.RecordCipher) error {
	if len(c.rbuf.hand) != 0 {
		return c.localFail(ciphersuite.AlertUnexpectedMessage, "handshake data buffered where ChangeCipherSpec was expected")
	}
	c.gotCCS = false
	for !c.gotCCS {
		if err := c.readRecordOrCCS(true); err != nil {
			return err
		}
	}
	c.gotCCS = false
	c.in.changeCipher(next)
	return nil
}

// maxRenegRequests bounds the renegotiation requests answered with a
// warning in a row (without application data in between); past it the
// peer is refused fatally (docs/protocol.md §6 allows either).
const maxRenegRequests = 8

// handlePostHandshake processes handshake messages received after the
// handshake: a renegotiation request gets a no_renegotiation warning,
// anything else is fatal. c.in must be held.
func (c *Conn) handlePostHandshake() error {
	for {
		msg, err := c.nextHandshakeMsg()
		if err != nil || msg == nil {
			return err
		}
		switch {
		case c.isClient && msg[0] == typeHelloRequest:
			if len(msg) != 4 {
				return c.localFail(ciphersuite.AlertDecodeError, "malformed HelloRequest")
			}
		case !c.isClient && msg[0] == typeClientHello:
		default:
			return c.localFail(ciphersuite.AlertUnexpectedMessage, "unexpected handshake message type %d after the handshake", msg[0])
		}
		if c.renegRequests++; c.renegRequests > maxRenegRequests {
			return c.localFail(ciphersuite.AlertNoRenegotiation,
				"more than %d renegotiation requests without application data in between", maxRenegRequests)
		}
		c.out.Lock()
		err = c.sendAlertLocked(alertLevelWarning, ciphersuite.AlertNoRenegotiation)
		c.out.Unlock()
		if err != nil {
			return err
		}
	}
}

// writeHandshake queues one handshake message.
func (c *Conn) writeHandshake(msg []byte) error {
	c.out.Lock()
	defer c.out.Unlock()
	if err := c.fatalErr(); err != nil {
		return err
	}
	c.wbuf.pending = append(c.wbuf.pending, msg...)
	return nil
}

// sealPendingLocked seals the queued handshake messages into the flight (several
// messages share a record; a message may span records). c.out must be held.
func (c *Conn) sealPendingLocked() error {
	w := &c.wbuf
	for p := w.pending; len(p) > 0; {
		m := min(len(p), maxPlaintext)
		if err := c.checkWriteSeqLocked(); err != nil {
			return err
		}
		w.flight = c.out.seal(w.flight, recordTypeHandshake, p[:m])
		p = p[m:]
	}
	w.pending = w.pending[:0]
	return nil
}

// writeChangeCipherSpec queues a ChangeCipherSpec and switches the write cipher.
func (c *Conn) writeChangeCipherSpec(next ciphersuite.RecordCipher) error {
	c.out.Lock()
	defer c.out.Unlock()
	if err := c.fatalErr(); err != nil {
		return err
	}
	if err := c.sealPendingLocked(); err != nil {
		return err
	}
	if err := c.checkWriteSeqLocked(); err != nil {
		return err
	}
	c.wbuf.flight = c.out.seal(c.wbuf.flight, recordTypeChangeCipherSpec, []byte{1})
	c.out.changeCipher(next)
	return nil
}

// flush writes the queued flight.
func (c *Conn) flush() error {
	c.out.Lock()
	defer c.out.Unlock()
	if err := c.fatalErr(); err != nil {
		return err
	}
	if c.out.err != nil {
		return c.out.err
	}
	if err := c.sealPendingLocked(); err != nil {
		return err
	}
	if len(c.wbuf.flight) == 0 {
		return nil
	}
	_, err := c.conn.Write(c.wbuf.flight)
	c.wbuf.flight = c.wbuf.flight[:0]
	if err != nil {
		c.out.err = permanent(err)
		return c.out.err
	}
	return nil
}

// setVersion fixes the record version for both directions.
func (c *Conn) setVersion(v uint16) {
	c.out.Lock()
	c.out.version = v
	c.out.Unlock()
	c.in.version = v // c.in is held by the handshake
	c.versionSet = true
}

// recordLayer is the view of a Conn that the handshake package drives.
type recordLayer Conn

func (r *recordLayer) ReadHandshake() ([]byte, error)  { return (*Conn)(r).readHandshake() }
func (r *recordLayer) WriteHandshake(msg []byte) error { return (*Conn)(r).writeHandshake(msg) }
func (r *recordLayer) ReadChangeCipherSpec(next ciphersuite.RecordCipher) error {
	return (*Conn)(r).readChangeCipherSpec(next)
}
func (r *recordLayer) WriteChangeCipherSpec(next ciphersuite.RecordCipher) error {
	return (*Conn)(r).writeChangeCipherSpec(next)
}
func (r *recordLayer) Flush() error        { return (*Conn)(r).flush() }
func (r *recordLayer) SetVersion(v uint16) { (*Conn)(r).setVersion(v) }

// looksLikeHTTP reports whether a record header is really the start of an
// HTTP request.
func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr[:4]) {
	case "GET ", "HEAD", "POST", "PUT ", "OPTI", "DELE", "CONN", "PATC":
		return true
	}
	return false
}
