package handshake

import (
	"crypto"
	"crypto/hmac"
	_ "crypto/sha256" // register SHA-256 for crypto.Hash.New
	_ "crypto/sha512" // register SHA-384 for crypto.Hash.New
	"hash"

	"github.com/milagro-go/milagro/ciphersuite"
)

// Lengths fixed by TLS 1.2.
const (
	masterSecretLength = 48 // RFC 5246 §8.1
	finishedVerifyLen  = 12 // RFC 5246 §7.4.9
	randomLength       = 32
)

// PRF labels.
const (
	labelMasterSecret         = "master secret"
	labelExtendedMasterSecret = "extended master secret"
	labelKeyExpansion         = "key expansion"
	labelClientFinished       = "client finished"
	labelServerFinished       = "server finished"
)

// pHash implements P_hash of RFC 5246 §5, filling result.
func pHash(result, secret, seed []byte, h func() hash.Hash) {
	mac := hmac.New(h, secret)
	mac.Write(seed)
	a := mac.Sum(nil) // A(1)
	var b []byte
	for j := 0; j < len(result); {
		mac.Reset()
		mac.Write(a)
		mac.Write(seed)
		b = mac.Sum(b[:0])
		j += copy(result[j:], b)

		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
}

// PRF is the TLS 1.2 PRF (RFC 5246 §5) with hash h (crypto.SHA256 or
// crypto.SHA384): n bytes of P_h(secret, label ‖ seed).
func PRF(h crypto.Hash, secret []byte, label string, seed []byte, n int) []byte {
	labelAndSeed := make([]byte, 0, len(label)+len(seed))
	labelAndSeed = append(labelAndSeed, label...)
	labelAndSeed = append(labelAndSeed, seed...)
	out := make([]byte, n)
	pHash(out, secret, labelAndSeed, h.New)
	return out
}

// masterSecret derives the RFC 5246 master secret (no EMS).
func masterSecret(s *ciphersuite.Suite, preMaster, clientRandom, serverRandom []byte) []byte {
	seed := make([]byte, 0, 2*randomLength)
	seed = append(seed, clientRandom...)
	seed = append(seed, serverRandom...)
	return PRF(s.Hash, preMaster, labelMasterSecret, seed, masterSecretLength)
}

// extendedMasterSecret derives the RFC 7627 master secret; sessionHash is
// the transcript hash up to and including ClientKeyExchange.
func extendedMasterSecret(s *ciphersuite.Suite, preMaster, sessionHash []byte) []byte {
	return PRF(s.Hash, preMaster, labelExtendedMasterSecret, sessionHash, masterSecretLength)
}

// keyMaterial is the key block cut for an AEAD suite (no MAC keys).
type keyMaterial struct {
	clientKey, serverKey, clientIV, serverIV []byte
}

// keysFromMasterSecret expands the key block: PRF(master, "key expansion",
// server_random ‖ client_random), cut client key, server key, client IV,
// server IV.
func keysFromMasterSecret(s *ciphersuite.Suite, master, clientRandom, serverRandom []byte) keyMaterial {
	seed := make([]byte, 0, 2*randomLength)
	seed = append(seed, serverRandom...)
	seed = append(seed, clientRandom...)
	kl, il := s.KeyLen(), s.IVLen()
	block := PRF(s.Hash, master, labelKeyExpansion, seed, 2*kl+2*il)
	var km keyMaterial
	km.clientKey, block = block[:kl:kl], block[kl:]
	km.serverKey, block = block[:kl:kl], block[kl:]
	km.clientIV, block = block[:il:il], block[il:]
	km.serverIV = block[:il:il]
	return km
}

func (km *keyMaterial) zero() {
	zeroize(km.clientKey)
	zeroize(km.serverKey)
	zeroize(km.clientIV)
	zeroize(km.serverIV)
}

// finishedVerifyData computes verify_data = PRF(master, label,
// Hash(handshake messages))[:12].
func finishedVerifyData(s *ciphersuite.Suite, master []byte, label string, transcriptHash []byte) []byte {
	return PRF(s.Hash, master, label, transcriptHash, finishedVerifyLen)
}

func zeroize(b []byte) {
	clear(b)
}
