package mtls_test

import (
	"encoding/binary"
	"net"
	"sync"
)

// A raw-record man in the middle for the Milagro negative tests: it wraps
// one side's net.Conn and rewrites the handshake messages that side writes
// while they are still in plaintext (before its ChangeCipherSpec), so each
// test can play a peer that sends a malformed or tampered message.

// milRewrite returns the new body of a handshake message of type typ (or
// body itself to leave it alone).
type milRewrite func(typ uint8, body []byte) []byte

type milTamperConn struct {
	net.Conn
	fn milRewrite

	mu   sync.Mutex
	buf  []byte
	done bool // a ChangeCipherSpec went by: pass everything through
}

func milTamper(fn milRewrite) func(net.Conn) net.Conn {
	return func(c net.Conn) net.Conn { return &milTamperConn{Conn: c, fn: fn} }
}

func (c *milTamperConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	var out []byte
	for !c.done && len(c.buf) >= 5 {
		n := int(binary.BigEndian.Uint16(c.buf[3:5]))
		if len(c.buf) < 5+n {
			break
		}
		rec := c.buf[:5+n]
		c.buf = c.buf[5+n:]
		switch rec[0] {
		case 22:
			out = append(out, c.rewriteRecord(rec)...)
		case 20:
			c.done = true
			out = append(out, rec...)
			out = append(out, c.buf...)
			c.buf = nil
		default:
			out = append(out, rec...)
		}
	}
	if len(out) > 0 {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// rewriteRecord applies fn to every whole handshake message of a record
// (the tests' messages never span records).
func (c *milTamperConn) rewriteRecord(rec []byte) []byte {
	frag := rec[5:]
	var nf []byte
	for len(frag) >= 4 {
		typ := frag[0]
		n := int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3])
		if len(frag) < 4+n {
			return rec
		}
		body := c.fn(typ, append([]byte(nil), frag[4:4+n]...))
		nf = append(nf, typ, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
		nf = append(nf, body...)
		frag = frag[4+n:]
	}
	if len(frag) != 0 {
		return rec
	}
	out := append([]byte(nil), rec[:5]...)
	binary.BigEndian.PutUint16(out[3:5], uint16(len(nf)))
	return append(out, nf...)
}

// milEditExtension rewrites extension ext of a ClientHello body with edit
// (which returns the new data, or keep=false to drop the extension).
func milEditExtension(body []byte, ext uint16, edit func(data []byte) (out []byte, keep bool)) []byte {
	p := 2 + 32
	if len(body) < p+1 {
		return body
	}
	p += 1 + int(body[p]) // session id
	if len(body) < p+2 {
		return body
	}
	p += 2 + int(binary.BigEndian.Uint16(body[p:])) // cipher suites
	if len(body) < p+1 {
		return body
	}
	p += 1 + int(body[p]) // compression
	if len(body) < p+2 {
		return body
	}
	head := append([]byte(nil), body[:p]...)
	exts := body[p+2:]
	var ne []byte
	for len(exts) >= 4 {
		typ := binary.BigEndian.Uint16(exts)
		n := int(binary.BigEndian.Uint16(exts[2:]))
		if len(exts) < 4+n {
			return body
		}
		data := exts[4 : 4+n]
		exts = exts[4+n:]
		if typ == ext {
			var keep bool
			data, keep = edit(append([]byte(nil), data...))
			if !keep {
				continue
			}
		}
		ne = binary.BigEndian.AppendUint16(ne, typ)
		ne = binary.BigEndian.AppendUint16(ne, uint16(len(data)))
		ne = append(ne, data...)
	}
	head = binary.BigEndian.AppendUint16(head, uint16(len(ne)))
	return append(head, ne...)
}

// Handshake message types.
const (
	milClientHello       = 1
	milServerKeyExchange = 12
	milClientKeyExchange = 16
)
