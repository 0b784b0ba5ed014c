package ciphersuite

import (
	"crypto/ecdh"
	"fmt"
	"io"
)

// Named groups for ECDHE_PSK, on crypto/ecdh.

// DefaultCurves returns the default ECDHE groups in preference order
// (X25519, then P-256), as a new slice.
func DefaultCurves() []CurveID { return []CurveID{X25519, P256} }

var defaultCurves = DefaultCurves()

// curvesOrDefault is the effective curve list of a configuration: an empty
// Curves means DefaultCurves (what the handshake then offers).
func curvesOrDefault(list []CurveID) []CurveID {
	if len(list) == 0 {
		return defaultCurves
	}
	return list
}

func (c CurveID) String() string { return curveName(c) }

func curveName(c CurveID) string {
	switch c {
	case X25519:
		return "X25519"
	case P256:
		return "P-256"
	}
	return fmt.Sprintf("group(%d)", uint16(c))
}

// ecdhCurve returns the implementation of a named group, or nil.
func ecdhCurve(c CurveID) ecdh.Curve {
	switch c {
	case X25519:
		return ecdh.X25519()
	case P256:
		return ecdh.P256()
	}
	return nil
}

func curveIn(c CurveID, list []CurveID) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

func hasKnownCurve(list []CurveID) bool {
	for _, c := range list {
		if ecdhCurve(c) != nil {
			return true
		}
	}
	return false
}

// pickCurve returns the first of the server's curves (DefaultCurves when
// none are configured) that the client offered, or 0.
func pickCurve(server []CurveID, hello *ClientHelloInfo) CurveID {
	if hello == nil {
		return 0
	}
	for _, c := range curvesOrDefault(server) {
		if ecdhCurve(c) != nil && curveIn(c, hello.Curves) {
			return c
		}
	}
	return 0
}

// pointFormatsOK reports whether the client accepts uncompressed points: it
// sent no ec_point_formats, or the list contains uncompressed(0).
func pointFormatsOK(hello *ClientHelloInfo) bool {
	if hello == nil || len(hello.PointFormats) == 0 {
		return true
	}
	for _, f := range hello.PointFormats {
		if f == 0 {
			return true
		}
	}
	return false
}

// parsePoint decodes a peer's public value: 32 raw bytes for X25519, an
// uncompressed point (0x04 ‖ X ‖ Y, on the curve) for P-256. Anything else
// is illegal_parameter.
func parsePoint(c CurveID, b []byte) (*ecdh.PublicKey, error) {
	curve := ecdhCurve(c)
	switch {
	case curve == nil:
		return nil, Errorf(AlertIllegalParameter, "ciphersuite: unsupported group %d", uint16(c))
	case c == X25519 && len(b) != 32:
		return nil, Errorf(AlertIllegalParameter, "ciphersuite: X25519 public value is %d bytes, want 32", len(b))
	case c == P256 && (len(b) != 65 || b[0] != 4):
		return nil, Errorf(AlertIllegalParameter, "ciphersuite: P-256 point is not an uncompressed point (%d bytes)", len(b))
	}
	pub, err := curve.NewPublicKey(b)
	if err != nil {
		return nil, Errorf(AlertIllegalParameter, "ciphersuite: invalid %s point: %v", curveName(c), err)
	}
	return pub, nil
}

// generateKey draws an ephemeral private key from rand (and only from
// rand, so that tests with a deterministic Rand are reproducible: Go 1.26's
// ecdh.Curve.GenerateKey ignores its reader).
func generateKey(c CurveID, rand io.Reader) (*ecdh.PrivateKey, error) {
	curve := ecdhCurve(c)
	if curve == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: unsupported group %d", uint16(c))
	}
	var b [32]byte
	defer zero(b[:])
	// For P-256 a random 32-byte string is a valid scalar (1..n-1) with
	// probability about 1 - 2^-32; X25519 accepts every string.
	for i := 0; i < 16; i++ {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return nil, Errorf(AlertInternalError, "ciphersuite: reading randomness: %v", err)
		}
		if k, err := curve.NewPrivateKey(b[:]); err == nil {
			return k, nil
		}
	}
	return nil, Errorf(AlertInternalError, "ciphersuite: random source gives no valid %s scalar", curveName(c))
}
