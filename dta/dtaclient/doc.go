// Package dtaclient is the endpoint's side of the D-TA services
// (docs/protocol.md §7): it enrolls once and keeps the key's daily time
// permits and renewal credentials fresh. It links neither the D-TA server
// (package dta) nor a database driver.
//
// Enroll contacts every D-TA with its one-time code, checks each share's
// D-TA fingerprint and combines the shares locally (the whole key exists
// only on the endpoint); it returns the key and a Renewal (per D-TA:
// address, fingerprint, renewal secret) to keep in a 0600 file
// (WriteRenewal, LoadRenewal). A Deployment file lists the D-TAs of a
// deployment, so that the codes given to Enroll can be checked against it.
//
// FetchPermits gets the combined permits for given days from every D-TA.
// PermitSource keeps today's and tomorrow's permits in memory, fetching the
// next day's in the background, for Config.GetCSPermit; CredentialKeeper
// rotates the renewal secrets (Rotate) and saves the renewal file. Both
// report their state for a health endpoint.
//
// Every call is one HTTP/1.1 request over this project's TLS with
// ECDHE_PSK: the enrollment code or the renewal secret is the pre-shared
// key, and the renewal secret's key id (dtawire.KeyID) is sent as the TLS
// server_name so that the D-TA knows which secret of a rotation is in use.
// Answers are size-bounded, parsed strictly, and every share is checked
// before use: a hostile D-TA can fail an enrollment but not crash or fool
// the endpoint.
package dtaclient
