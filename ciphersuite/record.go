package ciphersuite

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Record protection for TLS 1.2 AEAD suites.
//
//   - AES-GCM (RFC 5288, also the ECDHE_PSK suites of RFC 8442): the 12-byte
//     nonce is the 4-byte implicit salt from the key block followed by an
//     8-byte explicit nonce, which is sent before the ciphertext. We use the
//     record sequence number as the explicit nonce (as crypto/tls does), so
//     a nonce is never repeated under one key.
//   - ChaCha20-Poly1305 (RFC 7905): nonce = 12-byte IV XOR (0^4 ‖ seq); no
//     explicit nonce on the wire.
//
// In both cases AAD = seq(8) ‖ type(1) ‖ version(2) ‖ plaintext length(2).

const (
	aeadNonceLen   = 12
	gcmExplicitLen = 8
	aadLen         = 13
	// maxRecordPlaintext bounds the length field of the AAD (uint16); the
	// record layer never gets near it (2^14 + 2048 at most).
	maxRecordPlaintext = 0xFFFF
)

// errBadRecordMAC is the (allocation-free) error of every failed Open: too
// short, too long, or not authentic. The caller sends bad_record_mac.
var errBadRecordMAC error = &AlertError{Alert: AlertBadRecordMAC, Err: errors.New("record authentication failed")}

// NewRecordCipher returns the record protection for one direction, from the
// key and fixed IV cut from the key block (s.KeyLen() and s.IVLen() bytes).
func NewRecordCipher(s *Suite, key, iv []byte) (RecordCipher, error) {
	if s == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: NewRecordCipher: nil suite")
	}
	if len(key) != s.KeyLen() {
		return nil, Errorf(AlertInternalError, "ciphersuite: %s: key is %d bytes, want %d", s, len(key), s.KeyLen())
	}
	if len(iv) != s.IVLen() {
		return nil, Errorf(AlertInternalError, "ciphersuite: %s: IV is %d bytes, want %d", s, len(iv), s.IVLen())
	}
	switch s.AEAD {
	case AES128GCM, AES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, Errorf(AlertInternalError, "ciphersuite: %s: %v", s, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, Errorf(AlertInternalError, "ciphersuite: %s: %v", s, err)
		}
		c := &gcmRecord{aead: aead}
		copy(c.nonce[:4], iv)
		return c, nil
	case ChaCha20Poly1305:
		aead, err := chacha20poly1305.New(key)
		if err != nil {
			return nil, Errorf(AlertInternalError, "ciphersuite: %s: %v", s, err)
		}
		c := &chachaRecord{aead: aead}
		copy(c.iv[:], iv)
		return c, nil
	}
	return nil, Errorf(AlertInternalError, "ciphersuite: %s: unknown AEAD %d", s, s.AEAD)
}

// fillAAD writes seq ‖ typ ‖ version ‖ n into aad.
func fillAAD(aad *[aadLen]byte, seq uint64, typ uint8, version uint16, n int) {
	binary.BigEndian.PutUint64(aad[0:8], seq)
	aad[8] = typ
	binary.BigEndian.PutUint16(aad[9:11], version)
	binary.BigEndian.PutUint16(aad[11:13], uint16(n))
}

func checkSealLen(n int) {
	if n > maxRecordPlaintext {
		// A programming error of the record layer, never peer input.
		panic(fmt.Sprintf("ciphersuite: Seal of a %d-byte record", n))
	}
}

// gcmRecord is AES-GCM with a 4-byte salt and an 8-byte explicit nonce.
type gcmRecord struct {
	aead  cipher.AEAD
	nonce [aeadNonceLen]byte // salt ‖ explicit nonce (scratch)
	aad   [aadLen]byte       // scratch
}

func (c *gcmRecord) ExplicitNonceLen() int { return gcmExplicitLen }
func (c *gcmRecord) Overhead() int         { return gcmExplicitLen + c.aead.Overhead() }

// Seal appends seq(8) ‖ ciphertext ‖ tag to dst. plaintext may alias the
// bytes right after the explicit nonce in dst's spare capacity (in-place
// sealing), or not overlap dst at all.
func (c *gcmRecord) Seal(dst []byte, seq uint64, typ uint8, version uint16, plaintext []byte) []byte {
	checkSealLen(len(plaintext))
	binary.BigEndian.PutUint64(c.nonce[4:], seq)
	fillAAD(&c.aad, seq, typ, version, len(plaintext))
	dst = append(dst, c.nonce[4:]...)
	return c.aead.Seal(dst, c.nonce[:], plaintext, c.aad[:])
}

func (c *gcmRecord) Open(dst []byte, seq uint64, typ uint8, version uint16, fragment []byte) ([]byte, error) {
	n := len(fragment) - c.Overhead()
	if n < 0 || n > maxRecordPlaintext {
		return nil, errBadRecordMAC
	}
	copy(c.nonce[4:], fragment[:gcmExplicitLen])
	fillAAD(&c.aad, seq, typ, version, n)
	out, err := c.aead.Open(dst, c.nonce[:], fragment[gcmExplicitLen:], c.aad[:])
	if err != nil {
		return nil, errBadRecordMAC
	}
	return out, nil
}

// chachaRecord is ChaCha20-Poly1305 with nonce = IV XOR (0^4 ‖ seq).
type chachaRecord struct {
	aead  cipher.AEAD
	iv    [aeadNonceLen]byte
	nonce [aeadNonceLen]byte // scratch
	aad   [aadLen]byte       // scratch
}

func (c *chachaRecord) ExplicitNonceLen() int { return 0 }
func (c *chachaRecord) Overhead() int         { return c.aead.Overhead() }

func (c *chachaRecord) setNonce(seq uint64) {
	c.nonce = c.iv
	s := binary.BigEndian.Uint64(c.nonce[4:]) ^ seq
	binary.BigEndian.PutUint64(c.nonce[4:], s)
}

// Seal appends ciphertext ‖ tag to dst; plaintext may alias dst's spare
// capacity exactly (in place) or not overlap it.
func (c *chachaRecord) Seal(dst []byte, seq uint64, typ uint8, version uint16, plaintext []byte) []byte {
	checkSealLen(len(plaintext))
	c.setNonce(seq)
	fillAAD(&c.aad, seq, typ, version, len(plaintext))
	return c.aead.Seal(dst, c.nonce[:], plaintext, c.aad[:])
}

func (c *chachaRecord) Open(dst []byte, seq uint64, typ uint8, version uint16, fragment []byte) ([]byte, error) {
	n := len(fragment) - c.Overhead()
	if n < 0 || n > maxRecordPlaintext {
		return nil, errBadRecordMAC
	}
	c.setNonce(seq)
	fillAAD(&c.aad, seq, typ, version, n)
	out, err := c.aead.Open(dst, c.nonce[:], fragment, c.aad[:])
	if err != nil {
		return nil, errBadRecordMAC
	}
	return out, nil
}
