package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/internal/pskfile"
	"github.com/milagro-go/milagro/mtls"
)

// ---------------------------------------------------------------------------
// Milagro credential hook. The Milagro engineer sets these two variables from
// init() in a separate file (e.g. creds_milagro.go) to add --key, --pin,
// --permit, --p2p-key, --id, --server-id, --require-permits, --allow, ...
// Both are nil-checked here; nothing else in this file needs to change.
//
//	func init() {
//		milagroFlags = func(server bool) []cli.Flag { ... }
//		applyMilagro = func(c *cli.Context, cfg *mtls.Config, server bool) error { ... }
//	}
//
// applyMilagro runs after the PSK settings are applied; it may add
// credentials, and reports via hasMilagroCredentials (optional) whether it did.
var (
	milagroFlags func(server bool) []cli.Flag
	applyMilagro func(c *cli.Context, cfg *mtls.Config, server bool) error
	// hasMilagroCredentials reports whether Milagro flags were given; when it
	// is nil, a missing PSK is not an error if applyMilagro is set.
	hasMilagroCredentials func(c *cli.Context, server bool) bool
)

// ---------------------------------------------------------------------------

// PSK length bounds from docs/protocol.md §6.
const (
	minPSKLen = 16
	maxPSKLen = 512
)

// opensslSuiteNames maps OpenSSL (and a few GnuTLS) cipher names to code points.
var opensslSuiteNames = map[string]uint16{
	"PSK-AES128-GCM-SHA256":           0x00A8,
	"PSK-AES256-GCM-SHA384":           0x00A9,
	"PSK-CHACHA20-POLY1305":           0xCCAB,
	"ECDHE-PSK-CHACHA20-POLY1305":     0xCCAC,
	"TLS_PSK_AES_128_GCM_SHA256":      0x00A8, // GnuTLS spelling
	"TLS_PSK_AES_256_GCM_SHA384":      0x00A9,
	"TLS_PSK_CHACHA20_POLY1305":       0xCCAB,
	"TLS_ECDHE_PSK_CHACHA20_POLY1305": 0xCCAC,
}

// credentialFlags returns the credential and security flags shared by the
// server, client and proxy commands (server: the accepting side).
func credentialFlags(server bool) []cli.Flag {
	cat := "PSK credentials"
	fs := []cli.Flag{
		&cli.StringFlag{Name: "psk-identity", Category: cat, Usage: pskIdentityUsage(server)},
		&cli.StringFlag{Name: "psk", Category: cat, EnvVars: []string{"MTLS_PSK"}, Usage: "pre-shared key as `HEX` (16..512 bytes); prefer --psk-file or MTLS_PSK (a flag is visible in ps)"},
		&cli.StringFlag{Name: "psk-file-format", Category: cat, Value: pskfile.FormatAuto, Usage: "`FORMAT` of --psk-file: gnutls (identity:hexkey), stunnel (PSKsecrets: identity:key, a hex key decoded, any other taken as its ASCII characters, at least 16) or auto (gnutls if every key is hex)"},
	}
	if server {
		fs = append(fs,
			&cli.StringFlag{Name: "psk-file", Category: cat, Usage: "`FILE` of accepted PSKs, one identity:key per line (gnutls psk.txt or stunnel PSKsecrets format; # comments)"},
			&cli.StringFlag{Name: "psk-hint", Category: cat, Usage: "`HINT` sent to clients as psk_identity_hint"},
		)
		fs = append(fs, ticketFlags()...) // tickets.go
	} else {
		fs = append(fs,
			&cli.StringFlag{Name: "psk-file", Category: cat, Usage: "read the PSK from `FILE` (gnutls psk.txt or stunnel PSKsecrets format): the entry of --psk-identity, else the first"},
		)
		if milagroFlags != nil {
			fs = append(fs, &cli.StringFlag{Name: "pin-file", Category: "Milagro credentials", Usage: "read the PIN for a PIN token from `FILE` (instead of --pin or MTLS_PIN)"})
		}
	}
	fs = append(fs,
		&cli.StringFlag{Name: "suites", Category: "security", Usage: "comma-separated cipher suite `NAMES` in preference order, IANA (TLS_PSK_WITH_AES_128_GCM_SHA256) or OpenSSL (PSK-AES128-GCM-SHA256) names; default: every suite with credentials"},
		&cli.StringFlag{Name: "keylog", Category: "security", Usage: "append NSS key-log lines to `FILE` for Wireshark (INSECURE: exposes session keys)"},
		&cli.DurationFlag{Name: "handshake-timeout", Category: "security", Value: mtls.DefaultHandshakeTimeout, Usage: "bound on each handshake, connecting included (0: the default)"},
		&cli.BoolFlag{Name: "allow-no-ems", Category: "security", Usage: "INSECURE: allow PSK suites without the extended master secret (RFC 7627)"},
	)
	if milagroFlags != nil {
		fs = append(fs, milagroFlags(server)...)
	}
	return fs
}

func pskIdentityUsage(server bool) string {
	if server {
		return "the PSK `IDENTITY` accepted (with --psk)"
	}
	return "the PSK `IDENTITY` to present (with --psk)"
}

// configFromFlags builds an mtls.Config from the flags of credentialFlags.
func configFromFlags(c *cli.Context, server bool) (*mtls.Config, error) {
	cfg := &mtls.Config{
		HandshakeTimeout:   c.Duration("handshake-timeout"),
		InsecureAllowNoEMS: c.Bool("allow-no-ems"),
		Logger:             loggerOf(c),
	}
	if cfg.HandshakeTimeout < 0 {
		return nil, fmt.Errorf("invalid --handshake-timeout %v: must not be negative", cfg.HandshakeTimeout)
	}
	if cfg.InsecureAllowNoEMS {
		loggerOf(c).Warn("--allow-no-ems: PSK suites without the extended master secret are allowed (insecure)")
	}

	id, keyHex := c.String("psk-identity"), c.String("psk")
	warnSecretFlag(c, "psk", "MTLS_PSK", "--psk-file or MTLS_PSK")
	clientFile := !server && c.String("psk-file") != ""
	if clientFile && c.IsSet("psk") {
		return nil, fmt.Errorf("--psk and --psk-file are exclusive")
	}
	if c.IsSet("psk-identity") != c.IsSet("psk") && !clientFile {
		return nil, fmt.Errorf("--psk-identity and --psk must be given together")
	}
	var key []byte
	if c.IsSet("psk") {
		var err error
		if key, err = parsePSK(keyHex); err != nil {
			return nil, fmt.Errorf("invalid --psk: %w", err)
		}
		if id == "" {
			return nil, fmt.Errorf("invalid --psk-identity: must not be empty")
		}
		if len(id) > 65535 {
			return nil, fmt.Errorf("invalid --psk-identity: %d bytes, at most 65535", len(id))
		}
	}

	havePSK := key != nil
	if server {
		keys := map[string][]byte{}
		if key != nil {
			keys[id] = key
		}
		if f := c.String("psk-file"); f != "" {
			m, err := readPSKFile(c, f)
			if err != nil {
				return nil, err
			}
			for _, e := range m {
				keys[e.ID] = e.Key
			}
			havePSK = havePSK || len(m) > 0
		}
		if len(keys) > 0 {
			cfg.GetServerPSK = func(identity string) ([]byte, error) {
				if k, ok := keys[identity]; ok {
					return k, nil
				}
				return nil, fmt.Errorf("unknown PSK identity %q", identity)
			}
		}
		cfg.PSKIdentityHint = c.String("psk-hint")
		if err := applyTicketFlags(c, cfg); err != nil {
			return nil, err
		}
	} else if key != nil {
		cfg.PSKIdentity, cfg.PSK = id, key
	} else if clientFile {
		m, err := readPSKFile(c, c.String("psk-file"))
		if err != nil {
			return nil, err
		}
		e := m[0]
		if c.IsSet("psk-identity") {
			found := false
			for _, x := range m {
				if x.ID == id {
					e, found = x, true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("--psk-file %s has no key for --psk-identity %q", c.String("psk-file"), id)
			}
		}
		cfg.PSKIdentity, cfg.PSK = e.ID, e.Key
		havePSK = true
	}

	if s := c.String("suites"); s != "" {
		ids, err := parseSuites(s)
		if err != nil {
			return nil, err
		}
		cfg.CipherSuites = ids
	}

	if f := c.String("keylog"); f != "" {
		w, err := os.OpenFile(f, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("--keylog: %w", err)
		}
		// Kept open for the life of the process.
		cfg.KeyLogWriter = w
		loggerOf(c).Warn("--keylog: writing TLS session secrets; anyone who reads the file can decrypt the traffic (insecure, debugging only)", "file", f)
	}

	haveMilagro := false
	if applyMilagro != nil {
		if err := applyMilagro(c, cfg, server); err != nil {
			return nil, err
		}
		haveMilagro = hasMilagroCredentials == nil || hasMilagroCredentials(c, server)
	}
	if !havePSK && !haveMilagro {
		if server {
			return nil, fmt.Errorf("no credentials: give --psk-identity and --psk, or --psk-file")
		}
		return nil, fmt.Errorf("no credentials: give --psk-identity and --psk, or --psk-file")
	}
	if cfg.CipherSuites != nil && !haveMilagro {
		for _, sid := range cfg.CipherSuites {
			if s := ciphersuite.ByID(sid); s != nil && (s.KX == ciphersuite.KXPSK || s.KX == ciphersuite.KXECDHEPSK) {
				return cfg, nil
			}
		}
		return nil, fmt.Errorf("--suites: none of the chosen suites can use the configured PSK credentials")
	}
	return cfg, nil
}

// parsePSK decodes a hex PSK (an optional 0x prefix is allowed).
func parsePSK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	k, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not a hex string (%v)", err)
	}
	if len(k) < minPSKLen || len(k) > maxPSKLen {
		return nil, fmt.Errorf("%d bytes, want %d..%d", len(k), minPSKLen, maxPSKLen)
	}
	return k, nil
}

// parseSuites parses a comma-separated list of suite names (IANA, with or
// without TLS_, OpenSSL or GnuTLS spelling, or a hex code point like 0x00A8).
func parseSuites(list string) ([]uint16, error) {
	var ids []uint16
	seen := map[uint16]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		id, ok := suiteID(name)
		if !ok {
			return nil, fmt.Errorf("unknown cipher suite %q in --suites; valid names: %s", name, validSuiteNames())
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("--suites is empty; valid names: %s", validSuiteNames())
	}
	return ids, nil
}

func suiteID(name string) (uint16, bool) {
	if s := ciphersuite.ByName(name); s != nil {
		return s.ID, true
	}
	if id, ok := opensslSuiteNames[strings.ToUpper(name)]; ok {
		return id, true
	}
	if strings.HasPrefix(name, "0x") || strings.HasPrefix(name, "0X") {
		if v, err := strconv.ParseUint(name[2:], 16, 16); err == nil && ciphersuite.ByID(uint16(v)) != nil {
			return uint16(v), true
		}
	}
	return 0, false
}

func validSuiteNames() string {
	var names []string
	for _, s := range ciphersuite.All() {
		names = append(names, s.Name)
	}
	var alias []string
	for k := range opensslSuiteNames {
		if !strings.HasPrefix(k, "TLS_") {
			alias = append(alias, k)
		}
	}
	sort.Strings(alias)
	return strings.Join(names, ", ") + " (OpenSSL names: " + strings.Join(alias, ", ") + ")"
}

// suiteName returns the IANA name of a code point.
func suiteName(id uint16) string {
	if s := ciphersuite.ByID(id); s != nil {
		return s.Name
	}
	return fmt.Sprintf("0x%04X", id)
}
