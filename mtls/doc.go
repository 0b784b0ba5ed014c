// Package mtls secures connections with TLS 1.2 without certificates: a
// client proves who it is with a key issued for its identity (an e-mail
// address, a SPIFFE ID, a device name), and the server with a secret from
// the same trust authorities. There is no PKI to run, no certificate to
// renew, and the master secret can be split among independent trust
// authorities (D-TAs) so that no single one can forge an identity (see
// package pairing).
//
// The API is that of crypto/tls: Listen, Dial, Server, Client, Config,
// Conn (a net.Conn), ConnectionState. Three kinds of credentials, chosen
// by what the Config holds:
//
//   - Milagro CS (client to server): the client holds CSKey (or a
//     PIN-protected CSToken and GetPIN, two factors) and today's time
//     permit in CSPermits (daily revocation; servers require one unless
//     PermitMode is pairing.PermitsOptional); the server holds its key in
//     CSServerKeys.
//   - Milagro P2P (peer to peer): each side holds P2PKey; either can
//     listen, and the dialler names the ServerIdentity.
//   - Pre-shared keys (PSK and ECDHE_PSK, RFC 4279 / 5489 with AES-GCM and
//     ChaCha20-Poly1305): PSKIdentity and PSK on the client, GetServerPSK on
//     the server; these interoperate with OpenSSL, GnuTLS and stunnel.
//
// Milagro and ECDHE_PSK sessions are forward secret, and the extended
// master secret (RFC 7627) is required unless InsecureAllowNoEMS is set.
// Milagro sessions are also post-quantum hybrid by default: an ML-KEM-768
// key exchange goes beside the pairing-based one whenever the peer takes
// part, so a recording of the session stays confidential if pairings later
// fall to a quantum computer (Config.PostQuantum: prefer, require or off;
// ConnectionState.PostQuantum says whether a connection is hybrid).
//
// A server reads the client's authenticated identity from
// ConnectionState().PeerIdentity and can refuse identities with
// Config.VerifyPeerIdentity. For HTTP, package mtlshttp serves HTTP/2 and
// HTTP/1.1 on one listener (chosen by ALPN, Config.NextProtos), with
// handlers calling PeerIdentity(r.Context()), and makes the client
// transports. For gRPC, see package grpccreds.
//
// Keys are PEM files written by the mtls command (mtls ta ..., mtls keys
// ...) and read with LoadCSClientKey, LoadCSServerSecret, LoadP2PKey,
// LoadTimePermit and LoadPINToken.
//
// Runnable examples (go doc -http shows them with their output;
// go test -run Example ./mtls runs them): ExampleListen (a Milagro CS
// server and client), ExampleDial (a PIN-protected key and today's time
// permit), Example_p2p, Example_psk, ExampleConnContext (a plain net/http
// server); HTTP/2 in package mtlshttp, gRPC in package grpccreds.
//
// Errors caused by the peer or the credentials are *AlertError values
// carrying the TLS alert that was sent or received, with a message meant
// for a person (for example "access_denied: Milagro P2P client
// \"node-c\" denied: ...").
package mtls

// For this module's developers: mtls owns the record layer; it may import
// handshake, ciphersuite and pairing, never proxy or cmd (DESIGN.md).
