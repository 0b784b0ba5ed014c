package mtls

import (
	"math"
	"sync"

	"github.com/milagro-go/milagro/ciphersuite"
)

// halfConn is one direction of the record layer: the record version, the
// cipher protecting the records and their sequence number, and the error
// that ended the direction. The cipher and the sequence number change only
// through its methods: seal and open number one record each, changeCipher
// installs the cipher a ChangeCipherSpec announced and restarts the count.
//
// The lock is the direction's lock: the read side's also guards the read
// buffers and the protocol counters of the read path, the write side's the
// write buffers.
type halfConn struct {
	sync.Mutex
	err     error // permanent error for this direction
	version uint16
	cipher  ciphersuite.RecordCipher
	seq     uint64
}

// protected reports whether records in this direction are protected.
func (h *halfConn) protected() bool { return h.cipher != nil }

// spare returns how many more records this direction may number before the
// never-used number 2^64-1: unlimited (math.MaxUint64) while records are
// unprotected. The write side keeps the last one for a final close_notify.
func (h *halfConn) spare() uint64 {
	if h.cipher == nil {
		return math.MaxUint64
	}
	return math.MaxUint64 - h.seq
}

// changeCipher installs the cipher that protects the records after a
// ChangeCipherSpec; their numbering starts again at zero.
func (h *halfConn) changeCipher(next ciphersuite.RecordCipher) {
	h.cipher = next
	h.seq = 0
}

// seal appends one record of type typ carrying payload (header and
// fragment, protected if a cipher is on) to dst. The caller has checked
// spare.
func (h *halfConn) seal(dst []byte, typ uint8, payload []byte) []byte {
	start := len(dst)
	v := h.version
	dst = append(dst, typ, byte(v>>8), byte(v), 0, 0)
	if h.cipher == nil {
		dst = append(dst, payload...)
	} else {
		dst = h.cipher.Seal(dst, h.seq, typ, v, payload)
		h.seq++
	}
	n := len(dst) - start - recordHeaderLen
	dst[start+3], dst[start+4] = byte(n>>8), byte(n)
	return dst
}

// open authenticates and decrypts the fragment of a record of type typ and
// version vers into dst, and numbers the record if it authenticates.
// Unprotected, the fragment is the plaintext. The caller has checked spare.
func (h *halfConn) open(dst []byte, typ uint8, vers uint16, fragment []byte) ([]byte, error) {
	if h.cipher == nil {
		return fragment, nil
	}
	data, err := h.cipher.Open(dst, h.seq, typ, vers, fragment)
	if err != nil {
		return nil, err
	}
	h.seq++
	return data, nil
}
