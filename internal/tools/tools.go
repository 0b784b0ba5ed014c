//go:build tools

// Package tools pins module dependencies that packages of this module are
// about to use, so that `go mod tidy` keeps them in go.mod.
package tools

import (
	_ "github.com/cloudflare/circl/ecc/bls12381"
	_ "github.com/pion/dtls/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/urfave/cli/v2"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/crypto/cryptobyte"
)
