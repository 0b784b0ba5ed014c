package dtls

import (
	"encoding/binary"
	"net"
)

// plainAlerts corrects one kind of record pion writes wrongly. With
// connection IDs negotiated, pion v3.1.15 sends an alert of the
// handshake (epoch 0, unencrypted) in the tls12_cid record format, which
// RFC 9146 §3 forbids: "Plaintext payloads never use the new record format
// or the CID content type." The peer cannot read it: a pion peer failed
// with "invalid content type" instead of the alert; other stacks drop it.
// WriteTo turns such a datagram back into the plain alert record.
type plainAlerts struct{ net.PacketConn }

func (p plainAlerts) WriteTo(b []byte, addr net.Addr) (int, error) {
	if fixed, ok := plainAlert(b); ok {
		if _, err := p.PacketConn.WriteTo(fixed, addr); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return p.PacketConn.WriteTo(b, addr)
}

// Record layouts (RFC 6347 §4.1, RFC 9146 §4).
const (
	recordHeaderLen = 11 // type, version, epoch, sequence number; then the CID, if any, and the length
	contentAlert    = 21
	contentCID      = 25
)

// plainAlert rewrites a datagram holding exactly one epoch-0 tls12_cid
// record whose inner plaintext is an alert (pion writes each alert alone,
// unpadded):
//
//	25 | version(2) | epoch 0(2) | seq(6) | cid(n) | length 3 | level, desc | 21
//
// into the plaintext record 21 | version | epoch 0 | seq | length 2 | level, desc.
// Anything else is left alone.
func plainAlert(b []byte) ([]byte, bool) {
	const inner = 2 + 1 // the alert and its real content type
	if len(b) < recordHeaderLen+2+inner || b[0] != contentCID || b[3] != 0 || b[4] != 0 {
		return nil, false
	}
	n := len(b) - recordHeaderLen - 2 - inner
	if n > 255 || binary.BigEndian.Uint16(b[recordHeaderLen+n:]) != inner || b[len(b)-1] != contentAlert {
		return nil, false
	}
	out := make([]byte, 0, recordHeaderLen+2+2)
	out = append(out, contentAlert)
	out = append(out, b[1:recordHeaderLen]...)
	out = append(out, 0, 2)
	return append(out, b[len(b)-inner:len(b)-1]...), true
}
