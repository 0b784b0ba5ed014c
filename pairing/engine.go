package pairing

// The engine seam. The protocol code (cs.go, p2p.go) does its per-handshake
// group arithmetic through a small set of unexported functions and types
// with two implementations, chosen at build time:
//
//   - engine_blst.go (cgo on): blst, constant-time C and assembly;
//   - engine_circl.go (CGO_ENABLED=0): circl, pure Go (fastpair.go, wnaf.go).
//
// Both give the same bytes on the wire and the same pre-master secrets
// (the KATs, the docs/protocol.md §5.2 vector and engine_test.go check it). The exported
// API keeps circl's types; peer input is always checked by the Go decoders
// first (DecodeG1, DecodeG2, the fuzz targets' code), or by eDecodeG1 and
// eDecodeG2, which classify every rejection with the Go decoders, so both
// engines reject the same inputs with the same errors. A TimePermit holds
// its point in the engine: an endpoint decodes, checks and combines a
// permit share from every D-TA each day, and on blst that costs a fraction
// of circl's decompression and subgroup check.
//
// Each engine provides:
//
//	eG1, eG2, eLines, eGT               points, Miller-loop lines of a G2 point, GT
//	eDecodeG1, eDecodeG2                peer input: format, curve, subgroup, identity
//	eG1From, eG2From                    circl key material into the engine
//	eHashG1, eHashG2                    H1, H2 (RFC 9380)
//	eMul, eMulG2                        k·P for secret k, constant time
//	eMulPublic                          k·P for public k (y, h, π_S, π_C)
//	eTable, eTableOf, eMulTable         k·P for public k and a prepared P (a
//	                                    comb on blst: A′ of proven CS clients)
//	eAdd, eIsIdentity, eBytesG1/G2      group law, identity, compressed encoding
//	ePrepare, eGenLines, ePair          precomputed lines, ≤ 2-pair product
//	ePairFresh                          2-pair product, one G2 point used once
//	eGTExp, eGTIsOne, gtBytes           GT exponentiation (constant time), encoding

// Engine returns the name of the pairing engine this binary was built
// with: "blst" (cgo on) or "circl" (CGO_ENABLED=0).
func Engine() string { return engineName }
