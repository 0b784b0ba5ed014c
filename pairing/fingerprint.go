package pairing

import "crypto/sha256"

// KeyFingerprint returns a fingerprint of the server key this server was
// prepared from: SHA-256 over a label and the key's encoding (its identity,
// its D-TA set and the key itself). Servers holding the same key agree on
// it; a rotated key, another identity or a key of other D-TAs changes it.
// It is safe to store next to session state (a hash of a 255-bit secret
// tells nothing about it) but it is not meant to be published.
func (s *CSServer) KeyFingerprint() [32]byte { return s.fp }

// KeyFingerprint returns a fingerprint of the P2P key this peer was
// prepared from (see CSServer.KeyFingerprint).
func (s *P2PServer) KeyFingerprint() [32]byte { return s.fp }

// keyFingerprint hashes a key's encoding under label (a failure to encode
// gives the zero fingerprint, which matches no key that encodes).
func keyFingerprint(label string, enc []byte, err error) [32]byte {
	if err != nil {
		return [32]byte{}
	}
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(enc)
	clear(enc)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
