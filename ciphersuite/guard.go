package ciphersuite

import (
	"errors"
	"time"
)

// A Milagro hello costs the server pairings. Before it spends them, the
// server's key exchange asks its guards (admission control, lockout,
// replay cache, pairing gate: the caller's business, see the mtls
// package) through HelloGuard, and tells them the outcome through
// Admission. This package only asks: it keeps no counts, no addresses and
// no clocks of its own.

// HelloGuard is what a server key exchange asks before a pairing. One
// HelloGuard serves one connection (it knows the peer's address).
type HelloGuard interface {
	// Admit is called after every cheap check of an attempt and before its
	// pairing. It may block while the pairing waits its turn. An error
	// refuses the attempt: one wrapping ErrDenied with access_denied,
	// any other with handshake_failure.
	Admit(a *HelloAttempt) (Admission, error)
	// Locked reports whether a CS identity's attempts from this peer are
	// refused now (checked again before a session is resumed).
	Locked(id string) bool
}

// HelloAttempt describes one attempt to the guards.
type HelloAttempt struct {
	Kind KXKind // KXMilagroCS or KXMilagroP2P
	ID   string // the claimed (not yet authenticated) peer identity
	// Hello, when non-nil, is what makes the attempt unique (a CS
	// milagro_cs extension): the guards refuse it if they saw it before
	// Expiry, and reserve it before the pairing.
	Hello  []byte
	Expiry time.Time
}

// Admission is one admitted attempt. Proved is called once when the
// pairing is done (verified false: the CS proof did not verify); Finished
// once the peer's Finished was checked (ok: the handshake is complete,
// the only event that counts as a success).
type Admission interface {
	Proved(verified bool)
	Finished(ok bool)
}

// ErrDenied marks a HelloGuard refusal answered with access_denied (a
// locked-out identity, a replayed hello).
var ErrDenied = errors.New("refused by the server's guards")

// FinishedObserver is implemented by a server key exchange that must
// learn whether the peer's Finished verified; the handshake calls
// PeerFinished once it checked that Finished.
type FinishedObserver interface {
	PeerFinished(ok bool)
}
