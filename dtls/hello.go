package dtls

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
)

// DTLS record and handshake constants the listener needs to recognise a
// first ClientHello (RFC 6347 §4.1, §4.2.2; RFC 5246 §7.4.1.2).
const (
	contentHandshake            = 22
	handshakeClientHello        = 1
	handshakeHelloVerifyRequest = 3
	dtlsVersion10               = 0xfeff
	dtlsVersion12               = 0xfefd
	maxHelloLen                 = 1 << 14 // one record's worth; a ClientHello is far smaller
)

var errNotHello = errors.New("dtls: not an initial DTLS ClientHello")

// clientHello is what the listener learns from the first handshake record
// of a datagram from an unknown source.
type clientHello struct {
	messageSeq uint16
	cookie     []byte
}

// parseClientHello parses the first record of a datagram as an
// unfragmented DTLS ClientHello, checking every length. It allocates
// nothing: cookie points into b.
func parseClientHello(b []byte) (*clientHello, error) {
	s := cryptobyte.String(b)
	var (
		ctype              uint8
		recVersion, epoch  uint16
		recSeq             []byte
		rec                cryptobyte.String
		mtype              uint8
		mlen, foff, flen   uint32
		hello              clientHello
		body               cryptobyte.String
		version            uint16
		random, sessionID  cryptobyte.String
		cookie             cryptobyte.String
		suites, comp, exts cryptobyte.String
	)
	if !s.ReadUint8(&ctype) || ctype != contentHandshake ||
		!s.ReadUint16(&recVersion) || (recVersion != dtlsVersion10 && recVersion != dtlsVersion12) ||
		!s.ReadUint16(&epoch) || epoch != 0 ||
		!s.ReadBytes(&recSeq, 6) ||
		!s.ReadUint16LengthPrefixed(&rec) {
		return nil, errNotHello
	}
	if !rec.ReadUint8(&mtype) || mtype != handshakeClientHello ||
		!rec.ReadUint24(&mlen) || mlen > maxHelloLen ||
		!rec.ReadUint16(&hello.messageSeq) ||
		!rec.ReadUint24(&foff) || foff != 0 ||
		!rec.ReadUint24(&flen) || flen != mlen ||
		!rec.ReadBytes((*[]byte)(&body), int(mlen)) {
		return nil, errNotHello
	}
	if !body.ReadUint16(&version) || version>>8 != 0xfe ||
		!body.ReadBytes((*[]byte)(&random), 32) ||
		!body.ReadUint8LengthPrefixed(&sessionID) || len(sessionID) > 32 ||
		!body.ReadUint8LengthPrefixed(&cookie) ||
		!body.ReadUint16LengthPrefixed(&suites) || len(suites) < 2 || len(suites)%2 != 0 ||
		!body.ReadUint8LengthPrefixed(&comp) || len(comp) < 1 {
		return nil, errNotHello
	}
	if !body.Empty() {
		if !body.ReadUint16LengthPrefixed(&exts) || !body.Empty() {
			return nil, errNotHello
		}
		for !exts.Empty() {
			var typ uint16
			var data cryptobyte.String
			if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
				return nil, errNotHello
			}
		}
	}
	hello.cookie = cookie
	return &hello, nil
}

// parseHelloVerifyRequest returns the cookie of a datagram whose first
// record is a plaintext HelloVerifyRequest (as the DTLS server writes it:
// one record, unfragmented).
func parseHelloVerifyRequest(b []byte) ([]byte, bool) {
	s := cryptobyte.String(b)
	var (
		ctype, mtype           uint8
		recVersion, epoch, seq uint16
		recSeq                 []byte
		rec, cookie            cryptobyte.String
		mlen, foff, flen       uint32
		version                uint16
	)
	if !s.ReadUint8(&ctype) || ctype != contentHandshake ||
		!s.ReadUint16(&recVersion) || !s.ReadUint16(&epoch) || epoch != 0 ||
		!s.ReadBytes(&recSeq, 6) || !s.ReadUint16LengthPrefixed(&rec) ||
		!rec.ReadUint8(&mtype) || mtype != handshakeHelloVerifyRequest ||
		!rec.ReadUint24(&mlen) || !rec.ReadUint16(&seq) ||
		!rec.ReadUint24(&foff) || foff != 0 || !rec.ReadUint24(&flen) || flen != mlen ||
		!rec.ReadUint16(&version) || !rec.ReadUint8LengthPrefixed(&cookie) || len(cookie) == 0 {
		return nil, false
	}
	return cookie, true
}
