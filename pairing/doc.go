// Package pairing implements the BLS12-381 protocols behind the Milagro key
// exchanges of docs/protocol.md §1–4: the hashes H1_X, H2_X and Hq_X,
// distributed trust authority (D-TA) master shares and key issuance, the
// combination of key shares, time permits, PIN tokens, M-Pin Full with a
// forward-secret key agreement (Milagro CS) and Chow–Choo (Milagro P2P).
//
// It knows nothing of TLS: it takes and returns the byte strings that the
// TLS layer carries (identities, days, times, group elements) and produces
// the 32-byte pre-master secrets. It imports no other package of this module;
// its dependencies are github.com/cloudflare/circl (its types are in the API)
// and, when cgo is on, github.com/supranational/blst (see Engine).
//
// Every group element received from a peer is decoded strictly (length,
// canonical form, on the curve, in the prime-order subgroup, not the
// identity); each failure has its own sentinel error, usable with errors.Is.
// All randomness comes from an io.Reader passed in, and all times and days
// are passed in: the package reads no clock (CheckHello, CheckTime and
// CheckPermitDay apply the spec's skew and permit-day policy to a time the
// caller supplies). Secret types never print their contents through fmt,
// and have MarshalBinary/UnmarshalBinary for key files (ParseKey decodes any
// of them) and Zeroize.
//
// Overview, in the spec's terms:
//
//	D-TA:        NewMasterShare, Issue{CSClientKey,CSServerSecret,TimePermit,P2PKey}
//	combining:   Combine{CSClientKeys,CSServerSecrets,TimePermits,P2PKeys}
//	PIN:         CSClientKey.ExtractPIN → PINToken; NewCSClientWithPIN re-adds it
//	Milagro CS:  client NewCSClient → Hello (id, d, t, U, V) → Finish(W) → R, PMS
//	             server NewCSServer → Accept(hello) → W() → Finish(R) → PMS
//	Milagro P2P: server NewP2PServer → Start → (ID(), X()) → Finish(id_C, W_C, Y_C) → PMS
//	             client NewP2PClient → Respond(expected id_S, id_S, X_S) → W_C, Y_C, PMS
//
// Performance: the per-handshake arithmetic runs on blst (cgo on) or on
// circl (CGO_ENABLED=0), with identical results (Engine, engine.go).
// Pairings share one Miller loop and one final exponentiation, the
// Miller-loop lines of fixed G2 points (B_S, K_S, K2_C, B_C) are
// precomputed, the CS client caches e(K', B_S) and raises it to r+h with
// cyclotomic squarings (constant time), and servers cache the public points
// they hash from identities. A TimePermit holds its point in the engine,
// so the permit shares an endpoint fetches every day are decoded, checked
// and combined by blst when cgo is on. Secret scalars are multiplied only by
// constant-time code (blst's, or circl's fixed windows); circl's engine
// multiplies by public scalars (y, h, π) with a width-5 NAF.
package pairing

import (
	"errors"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// Sizes of the encodings (docs/protocol.md §1).
const (
	G1Size     = bls12381.G1SizeCompressed // 48: compressed G1 element
	G2Size     = bls12381.G2SizeCompressed // 96: compressed G2 element
	GTSize     = bls12381.GtSize           // 576: GT element (only hashed)
	ScalarSize = bls12381.ScalarSize       // 32: big-endian scalar
	PMSSize    = 32                        // pre-master secret
	MaxIDLen   = 1024                      // longest identity in bytes
	MaxPIN     = 99_999_999                // largest PIN
)

// Errors for encodings of group elements and scalars. Each decoder failure
// wraps exactly one of them.
var (
	// ErrLength: the encoding does not have the exact length.
	ErrLength = errors.New("pairing: wrong encoding length")
	// ErrNonCanonical: bad flag bits, a coordinate ≥ p, an infinity
	// encoding with other bits set, or a scalar ≥ r.
	ErrNonCanonical = errors.New("pairing: non-canonical encoding")
	// ErrNotOnCurve: the x coordinate has no point on the curve.
	ErrNotOnCurve = errors.New("pairing: point not on the curve")
	// ErrNotInSubgroup: the point is on the curve but not in the
	// prime-order subgroup.
	ErrNotInSubgroup = errors.New("pairing: point not in the prime-order subgroup")
	// ErrIdentity: the identity element (point at infinity), which is never
	// a valid protocol value.
	ErrIdentity = errors.New("pairing: identity element")
	// ErrZeroScalar: a zero scalar where a non-zero one is required.
	ErrZeroScalar = errors.New("pairing: zero scalar")
)

// Errors for keys, identities and protocol failures.
var (
	// ErrInvalidID: an identity that is empty, longer than MaxIDLen bytes,
	// not valid UTF-8, or holding a control character (Unicode Cc).
	ErrInvalidID = errors.New("pairing: invalid identity")
	// ErrInvalidPIN: a PIN outside 1..MaxPIN.
	ErrInvalidPIN = errors.New("pairing: PIN out of range")
	// ErrMismatch: shares, keys or permits that do not belong together
	// (different identities or days), or no shares at all.
	ErrMismatch = errors.New("pairing: mismatched keys or shares")
	// ErrDuplicateDTA: two shares of the same D-TA given to a Combine.
	ErrDuplicateDTA = errors.New("pairing: the same D-TA's share given twice")
	// ErrShare: one D-TA's share where a combined key is needed.
	ErrShare = errors.New("pairing: a key share, not a combined key")
	// ErrDTASet: a permit combined from another set of D-TAs than the key.
	ErrDTASet = errors.New("pairing: permit and key come from different D-TA sets")
	// ErrKeyEncoding: a secret's binary encoding is malformed.
	ErrKeyEncoding = errors.New("pairing: malformed key encoding")
	// ErrAuthFailed: the M-Pin check e(V,Q)·e(U+y·A,K_S) = 1 failed
	// (wrong key, wrong PIN, wrong permit, forged values). TLS: access_denied.
	ErrAuthFailed = errors.New("pairing: M-Pin authentication failed")
	// ErrPeerIdentity: the P2P server identity is not the expected one.
	// TLS: access_denied.
	ErrPeerIdentity = errors.New("pairing: unexpected peer identity")
	// ErrClockSkew: the client's time is too far from the server's.
	ErrClockSkew = errors.New("pairing: client time outside the allowed skew")
	// ErrPermitDay: the permit day is not acceptable (wrong day, or a permit
	// present/missing against the policy).
	ErrPermitDay = errors.New("pairing: unacceptable permit day")
	// ErrUnusable: a zero-value object (not made by this package's
	// constructors) or a handshake state whose Finish already ran.
	ErrUnusable = errors.New("pairing: object not prepared or already used")
	// ErrRandom: the random source failed.
	ErrRandom = errors.New("pairing: random source failed")
)
