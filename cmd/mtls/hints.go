package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// handshakeHint explains a refusal by the server to a Milagro CS client:
// the server says no more than its alert, by design, so the client lists
// what it can check on its own side. It returns a headline and the things to
// check, or nothing when err is not such a refusal.
func handshakeHint(cfg *mtls.Config, err error) (headline string, checks []string) {
	var ae *mtls.AlertError
	if cfg == nil || !errors.As(err, &ae) || !ae.Remote || (cfg.CSKey == nil && cfg.CSToken == nil) {
		return "", nil
	}
	switch ae.Alert {
	case ciphersuite.AlertUnrecognizedName:
		if cfg.ServerIdentity == "" {
			return "The server holds no key for the deployment-wide identity, which this client asked for (no --server-id).",
				[]string{"pass --server-id NAME: the server identity its key was issued for (mtls keys show KEY on the server prints it)"}
		}
		return fmt.Sprintf("The server holds no key for the server identity %q that this client asked for (--server-id).", cfg.ServerIdentity),
			[]string{
				"check --server-id: it must be an identity the server holds a key for (mtls keys show KEY on the server prints it)",
				"or leave --server-id out if the server holds the deployment-wide key",
			}
	case ciphersuite.AlertAccessDenied:
		return "The server refused the Milagro CS proof. Things to check here:", csDeniedChecks(cfg, time.Now())
	}
	return "", nil
}

// csDeniedChecks lists what a CS client refused with access_denied can
// check locally, most likely first.
func csDeniedChecks(cfg *mtls.Config, now time.Time) []string {
	var out []string
	day := pairing.Day(now)
	switch {
	case cfg.GetCSPermit != nil:
		if _, err := cfg.GetCSPermit(day); err != nil {
			out = append(out, fmt.Sprintf("time permit: --renewal holds none for today (%s): %v", pairing.FormatDay(day), err))
		} else {
			out = append(out, fmt.Sprintf("time permit: today's (%s) from --renewal was sent; a revocation at a D-TA shows here only tomorrow", pairing.FormatDay(day)))
		}
	case len(cfg.CSPermits) == 0:
		out = append(out, "time permit: none was sent, and servers require one by default: pass --permit FILE (from mtls keys renew) or --renewal FILE")
	default:
		out = append(out, fmt.Sprintf("time permit: held for %s; this machine's clock says %s (UTC), day %s", permitDays(cfg.CSPermits), now.UTC().Format(time.DateTime), pairing.FormatDay(day)))
	}
	if cfg.CSToken != nil {
		out = append(out, "PIN: a wrong PIN for the PIN token fails exactly like this (and repeated failures lock the identity out for a while)")
	}
	var dtas []pairing.Fingerprint
	if cfg.CSKey != nil {
		dtas = cfg.CSKey.DTAs()
	} else {
		dtas = cfg.CSToken.DTAs()
	}
	out = append(out, fmt.Sprintf("key: combined from %d D-TA(s) (%s); it must hold a share of every D-TA of the deployment", len(dtas), pairing.FormatFingerprints(dtas)))
	if cfg.ServerIdentity != "" {
		out = append(out, fmt.Sprintf("server identity: the server was asked to prove %q (--server-id)", cfg.ServerIdentity))
	}
	out = append(out, "lockout and access control: the server may not allow this identity, or may have locked it out after failed attempts (its log says which)")
	return out
}

// withHint adds the explanation of handshakeHint to a command's error, on
// lines of their own after the error.
func withHint(cfg *mtls.Config, err error) error {
	headline, checks := handshakeHint(cfg, err)
	if headline == "" {
		return err
	}
	var b strings.Builder
	b.WriteString(headline)
	for _, c := range checks {
		b.WriteString("\n  - " + c)
	}
	var ce *commandError
	if errors.As(err, &ce) {
		return &commandError{msg: ce.msg, detail: b.String(), err: ce.err}
	}
	return &commandError{msg: err.Error(), detail: b.String(), err: err}
}

// hintForLog is handshakeHint on one line, for a log attribute.
func hintForLog(cfg *mtls.Config, err error) string {
	headline, checks := handshakeHint(cfg, err)
	if headline == "" {
		return ""
	}
	return strings.TrimSuffix(headline, " Things to check here:") + " " + strings.Join(checks, "; ")
}
