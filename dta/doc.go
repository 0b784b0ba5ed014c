// Package dta runs a distributed trust authority (D-TA) as a network service
// (docs/protocol.md §7, contract 1.2).
//
// For an operator: Open a Store (an SQLite file, or a PostgreSQL URL shared
// by several replicas of one D-TA), create enrollment codes with
// Store.CreateCode, and serve shares and daily time permits with
// NewServer(...).Serve over this project's own TLS (ECDHE_PSK only: an
// enrollment code or a renewal credential is the pre-shared key). Revoke,
// reinstate, list and audit work on the same store while it runs. The audit
// log is hash-chained in Merkle-rooted batches; Store.VerifyAudit (`ta audit
// --verify`) proves that no row was removed or changed and that the tables
// agree with it.
//
// The endpoint side (enrollment, permit renewal, the renewal and deployment
// files, the permit source a Config plugs in) is package dta/dtaclient,
// which links neither this package nor a database driver; the contract both
// sides speak (kinds, credentials, request and response bodies, share
// encodings) is package dta/dtawire.
//
// Secrets at rest: enrollment codes and renewal secrets are PSKs, which the
// D-TA must be able to recompute, so a plain hash cannot stand in for them.
// The store keeps them sealed (X25519 + ChaCha20-Poly1305) to a key derived
// from the master share, which never enters the database: a copy of the
// database alone authenticates no one. Operator commands that create codes
// need only the sealing public key, kept in the store's meta table.
//
// Rotation (POST /v1/renew): the old renewal secret keeps working until the
// new one has been used once. Both share one PSK identity, so the client
// names the secret it holds in its TLS server_name, "k<16 hex>.dta.invalid"
// (the first 8 bytes of SHA-256("MTLS1-DTA-KEYID" ‖ secret)); the D-TA uses
// the pending secret only when that name matches it, and promotes it on its
// first successful use, on any endpoint.
//
// What the service spends on strangers is bounded before it is spent
// (listener.go): admission per source (IPv4 address, IPv6 /64) at accept
// time, fair handshake slots freed by a short deadline, rate-limited logs.
// There are no session tickets: every connection is a full handshake with
// the credential's current secret, re-checked on every request of a
// kept-alive connection (connguard.go). Tomorrow's permit is issued only in
// the last PermitAheadHours of today, which bounds how long a revoked
// identity keeps working (window.go).
package dta
