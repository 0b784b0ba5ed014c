// Package dtls lets UDP peers (IoT devices, CoAP, telemetry, media) use
// Milagro P2P keys over DTLS 1.2, and speak plain DTLS-PSK with any other
// DTLS stack.
//
// Listen/Dial and Server/Client return a *Conn, a net.Conn carrying whole
// datagrams, with the authenticated peer identity in PeerIdentity once the
// handshake has completed. With Config.P2PKey, the forward-secret
// Chow–Choo values ride in the PSK identity hint and identity of an
// unmodified pion/dtls v3 stack and both sides derive the PSK from the
// pairing (spec dtls-p2p.md); only holders of keys for the two identities
// finish the handshake. With Config.PSK the same API speaks static
// DTLS-PSK (OpenSSL's `-dtls1_2 -psk`). The extended master secret is
// required, session resumption is off, RFC 9146 connection IDs are on by
// default and every handshake is bounded by Config.HandshakeTimeout.
//
// Delivery is UDP's: datagrams may be lost or reordered, and applications
// retransmit as they would without DTLS. In particular pion may drop
// application datagrams (all but one) that reach a server in the instant
// between sending its last handshake flight and marking the handshake
// complete, so a client should not count on a burst sent right after
// Dial. Records that do not decrypt are dropped silently (RFC 6347
// §4.1.2.7), so a wrong key shows up on both sides as a handshake that
// times out after deriving a key, reported as ErrKeyConfirmation, rather
// than as an alert.
//
// A handshake this side refuses (a malformed or tampered hint or
// identity, a peer without a key for its claimed identity, a
// VerifyPeerIdentity refusal) fails with that reason, wrapped by the
// error Handshake returns, even when the peer's answering alert arrives
// first; the peer sees a fatal internal_error alert (the only one pion
// sends for a refusal). Handshake alerts are sent as plaintext records:
// pion writes them in the connection-ID format, which RFC 9146 §3
// forbids, and this package rewrites them.
//
// A Listener serves many peers on one UDP socket (see its doc for what
// an unauthenticated peer may cost). The HelloVerifyRequest cookie
// exchange is pion's: pion v3 can only continue a handshake whose cookie
// round it ran itself (after a cookie exchange the peers number their
// handshake messages from 1, and those numbers are in the Finished
// transcript), so the listener cannot answer ClientHellos statelessly
// and hand the verified one over. It instead bounds what a peer holds
// before its cookie comes back, and for how long.
package dtls
