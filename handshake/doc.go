// Package handshake implements the TLS 1.2 handshake of this module: every
// handshake message we send or accept (marshalled and parsed with
// golang.org/x/crypto/cryptobyte), the client and server state machines, the
// transcript hash, the TLS 1.2 PRF, the extended master secret (RFC 7627),
// secure renegotiation signalling (RFC 5746, renegotiation itself is never
// done), application-layer protocol negotiation (ALPN, RFC 7301, alpn.go),
// and the Finished messages.
//
// The flows are certificate-free:
//
//	ClientHello        -->
//	                   <--  ServerHello, [ServerKeyExchange], ServerHelloDone
//	ClientKeyExchange, ChangeCipherSpec, Finished  -->
//	                   <--  [NewSessionTicket], ChangeCipherSpec, Finished
//
// and, resuming a session with an RFC 5077 session ticket (ticket.go,
// resume_client.go, resume_server.go; no key exchange at all):
//
//	ClientHello (session_ticket, session_id)  -->
//	                   <--  ServerHello (same session_id), [NewSessionTicket],
//	                        ChangeCipherSpec, Finished
//	ChangeCipherSpec, Finished  -->
//
// Key exchanges plug in through the ciphersuite package (ClientKX/ServerKX);
// records are read and written through the small RecordLayer interface, which
// package mtls implements and tests implement in memory.
//
// Every failure detected here is a *ciphersuite.AlertError carrying the alert
// the caller (the record layer's owner) must send; errors returned by the
// RecordLayer pass through unchanged. This package never sends alerts.
//
// Imports: within this module, handshake may import only ciphersuite and
// pairing (imports flow cmd → proxy → mtls → handshake → ciphersuite →
// pairing, never back up).
package handshake
