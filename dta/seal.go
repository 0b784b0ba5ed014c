package dta

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// Secrets at rest are sealed to an X25519 key derived from the master share:
// sealed = e_pub ‖ ChaCha20-Poly1305(k, nonce 0, secret, aad) with
// k = HKDF-SHA256(X25519(e, pub), salt e_pub ‖ pub, "MTLS1-DTA-SEAL").
// The AAD binds the secret to its row (code id, or kind and identity), so
// rows cannot be swapped.

var errUnseal = errors.New("dta: a sealed secret in the store does not open with this master share")

// sealKey derives the D-TA's sealing key pair from its master share.
func sealKey(m *pairing.MasterShare) (*ecdh.PrivateKey, error) {
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	defer clear(b)
	k, err := hkdf.Key(sha256.New, b, nil, "MTLS1-DTA-SEAL-KEY", 32)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return ecdh.X25519().NewPrivateKey(k)
}

func sealAEADKey(shared, epub, pub []byte) ([]byte, error) {
	salt := append(append([]byte(nil), epub...), pub...)
	return hkdf.Key(sha256.New, shared, salt, "MTLS1-DTA-SEAL", chacha20poly1305.KeySize)
}

// seal encrypts secret to pub.
func seal(rand io.Reader, pub *ecdh.PublicKey, secret []byte, aad string) ([]byte, error) {
	e, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	shared, err := e.ECDH(pub)
	if err != nil {
		return nil, err
	}
	defer clear(shared)
	epub := e.PublicKey().Bytes()
	k, err := sealAEADKey(shared, epub, pub.Bytes())
	if err != nil {
		return nil, err
	}
	defer clear(k)
	a, err := chacha20poly1305.New(k)
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	return a.Seal(epub, nonce[:], secret, []byte(aad)), nil
}

// unseal opens what seal wrote.
func unseal(priv *ecdh.PrivateKey, sealed []byte, aad string) ([]byte, error) {
	if len(sealed) != 32+dtawire.SecretSize+chacha20poly1305.Overhead {
		return nil, errUnseal
	}
	epub, err := ecdh.X25519().NewPublicKey(sealed[:32])
	if err != nil {
		return nil, errUnseal
	}
	shared, err := priv.ECDH(epub)
	if err != nil {
		return nil, errUnseal
	}
	defer clear(shared)
	k, err := sealAEADKey(shared, sealed[:32], priv.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	defer clear(k)
	a, err := chacha20poly1305.New(k)
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	out, err := a.Open(nil, nonce[:], sealed[32:], []byte(aad))
	if err != nil {
		return nil, errUnseal
	}
	return out, nil
}
