package handshake

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
	"golang.org/x/crypto/cryptobyte"
)

// A fake PSK key exchange and record cipher, independent of the ciphersuite
// package, so the state machines can be tested on their own. The fake PSK
// follows RFC 4279 framing (hint and identity as uint16-prefixed opaques);
// the pre-master secret is derived from the PSK.

func useFakes(t testing.TB) {
	t.Helper()
	oc, os, or, ocs, oss := newClientKX, newServerKX, newRecordCipher, clientSupports, serverSupports
	newClientKX = func(cfg *ciphersuite.ClientConfig, offered []*ciphersuite.Suite) (ciphersuite.ClientKX, error) {
		return &fakeClientKX{cfg: cfg, exts: fakeHelloExts}, nil
	}
	newServerKX = func(cfg *ciphersuite.ServerConfig, s *ciphersuite.Suite, h *ciphersuite.ClientHelloInfo) (ciphersuite.ServerKX, error) {
		if fakeServerKXErr != nil {
			return nil, fakeServerKXErr
		}
		return &fakeServerKX{cfg: cfg, s: s}, nil
	}
	newRecordCipher = newFakeCipher
	clientSupports = func(c *ciphersuite.ClientConfig, s *ciphersuite.Suite) bool {
		return c.PSK != nil && (fakeAllKinds || s.KX == ciphersuite.KXPSK || s.KX == ciphersuite.KXECDHEPSK)
	}
	serverSupports = func(c *ciphersuite.ServerConfig, s *ciphersuite.Suite, h *ciphersuite.ClientHelloInfo) bool {
		if c.PSK == nil {
			return false
		}
		switch s.KX {
		case ciphersuite.KXPSK:
			return true
		case ciphersuite.KXECDHEPSK:
			return len(h.Curves) > 0
		}
		return fakeAllKinds
	}
	t.Cleanup(func() {
		newClientKX, newServerKX, newRecordCipher, clientSupports, serverSupports = oc, os, or, ocs, oss
		fakeHelloExts, fakeServerKXErr, fakeAllKinds = nil, nil, false
	})
}

var (
	fakeHelloExts   []ciphersuite.Extension
	fakeServerKXErr error
	fakeAllKinds    bool // the fakes also stand in for the Milagro key exchanges
)

func fakePMS(psk []byte) []byte {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(make([]byte, len(psk))) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(psk) })
	return b.BytesOrPanic()
}

type fakeClientKX struct {
	cfg      *ciphersuite.ClientConfig
	exts     []ciphersuite.Extension
	hint     []byte
	identity []byte
}

func (k *fakeClientKX) HelloExtensions() ([]ciphersuite.Extension, error) { return k.exts, nil }

func (k *fakeClientKX) ProcessServerKeyExchange(s *ciphersuite.Suite, body []byte) error {
	if body == nil {
		return nil
	}
	in := cryptobyte.String(body)
	var hint cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&hint) || !in.Empty() {
		return ciphersuite.Errorf(ciphersuite.AlertDecodeError, "fake: bad ServerKeyExchange")
	}
	k.hint = hint
	return nil
}

func (k *fakeClientKX) GenerateClientKeyExchange(s *ciphersuite.Suite) ([]byte, []byte, error) {
	id, key, err := k.cfg.PSK(k.hint)
	if err != nil {
		return nil, nil, err
	}
	k.identity = id
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(id) })
	return b.BytesOrPanic(), fakePMS(key), nil
}

func (k *fakeClientKX) PeerIdentity() string    { return "" }
func (k *fakeClientKX) PSKIdentityHint() string { return string(k.hint) }
func (k *fakeClientKX) LocalIdentity() string   { return string(k.identity) }

type fakeServerKX struct {
	cfg  *ciphersuite.ServerConfig
	s    *ciphersuite.Suite
	peer string
}

func (k *fakeServerKX) GenerateServerKeyExchange() ([]byte, error) {
	if k.s.KX == ciphersuite.KXPSK && len(k.cfg.Hint) == 0 {
		return nil, nil
	}
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k.cfg.Hint) })
	return b.BytesOrPanic(), nil
}

func (k *fakeServerKX) ProcessClientKeyExchange(body []byte) ([]byte, error) {
	in := cryptobyte.String(body)
	var id cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&id) || !in.Empty() {
		return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError, "fake: bad ClientKeyExchange")
	}
	key, err := k.cfg.PSK(id)
	if err != nil {
		return nil, ciphersuite.Errorf(ciphersuite.AlertUnknownPSKIdentity, "fake: %v", err)
	}
	k.peer = string(id)
	return fakePMS(key), nil
}

func (k *fakeServerKX) PeerIdentity() string { return k.peer }

// fakeCipher: AES-GCM keyed by SHA-256(key ‖ iv), nonce = seq.
type fakeCipher struct{ aead cipher.AEAD }

func newFakeCipher(s *ciphersuite.Suite, key, iv []byte) (ciphersuite.RecordCipher, error) {
	if len(key) != s.KeyLen() || len(iv) != s.IVLen() {
		return nil, errors.New("fake: bad key or IV length")
	}
	k := sha256.Sum256(append(append([]byte(nil), key...), iv...))
	blk, _ := aes.NewCipher(k[:])
	a, _ := cipher.NewGCM(blk)
	return &fakeCipher{a}, nil
}

func (c *fakeCipher) ExplicitNonceLen() int { return 0 }
func (c *fakeCipher) Overhead() int         { return c.aead.Overhead() }

func (c *fakeCipher) nonceAAD(seq uint64, typ uint8, version uint16, n int) ([]byte, []byte) {
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce[4:], seq)
	aad := binary.BigEndian.AppendUint64(nil, seq)
	aad = append(aad, typ)
	aad = binary.BigEndian.AppendUint16(aad, version)
	aad = binary.BigEndian.AppendUint16(aad, uint16(n))
	return nonce, aad
}

func (c *fakeCipher) Seal(dst []byte, seq uint64, typ uint8, version uint16, pt []byte) []byte {
	nonce, aad := c.nonceAAD(seq, typ, version, len(pt))
	return c.aead.Seal(dst, nonce, pt, aad)
}

func (c *fakeCipher) Open(dst []byte, seq uint64, typ uint8, version uint16, frag []byte) ([]byte, error) {
	if len(frag) < c.aead.Overhead() {
		return nil, errors.New("fake: short record")
	}
	nonce, aad := c.nonceAAD(seq, typ, version, len(frag)-c.aead.Overhead())
	return c.aead.Open(dst, nonce, frag, aad)
}
