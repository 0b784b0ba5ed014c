// Package ciphersuite is the cryptographic core of the TLS 1.2 stack below
// the handshake: the cipher suite table (suite.go), TLS alerts as typed
// errors (alert.go), the AEAD record protection of each suite
// (NewRecordCipher: AES-GCM per RFC 5288 and ChaCha20-Poly1305 per RFC 7905),
// and the key exchanges behind the ClientKX/ServerKX seam of kx.go — plain
// PSK (RFC 4279), ECDHE_PSK (RFC 5489, X25519 and P-256) and the Milagro CS
// and P2P exchanges (docs/protocol.md §3–5), with their post-quantum hybrid
// (pq.go, docs/protocol.md §5b: ML-KEM-768 from crypto/mlkem, the milagro_pq
// extension).
//
// The package sees message bodies only: the handshake package frames them,
// drives the state machines and derives keys; the record layer (package
// mtls) owns sockets. Everything parsed here comes from a peer and is
// treated as hostile: bodies are parsed with cryptobyte, nothing may trail,
// failures are *AlertError values naming the alert to send, and no input
// makes the package panic. Randomness comes only from the configured Rand,
// except ML-KEM encapsulation, which draws from crypto/rand as FIPS 203 asks.
//
// Imports: of this module, ciphersuite may import only package pairing (the
// pairing-based protocols); it must never import handshake, mtls or
// anything above them.
package ciphersuite
