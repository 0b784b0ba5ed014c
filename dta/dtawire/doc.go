// Package dtawire is the contract between a D-TA (package dta) and its
// endpoints (package dtaclient), docs/protocol.md §7: the enrollment kinds,
// enrollment codes and PSK identities, the JSON bodies of the /v1/ API and
// their strict decoding, error codes, the bounds both sides enforce, and
// the share encodings on the wire. It depends on pairing only.
package dtawire
