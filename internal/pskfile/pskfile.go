// Package pskfile parses pre-shared key files as the mtls command reads
// them (--psk-file): GnuTLS's psk.txt (identity:hexkey lines) and stunnel's
// PSKsecrets (identity:key lines: as stunnel 5 reads them, a key of valid
// hex of at least 16 bytes is decoded, any other key of at least 16
// printable ASCII characters is taken as its characters). Blank lines and lines starting with # are ignored. Input is
// untrusted: every line and length is checked, errors name the line, and
// nothing of a key is ever put in an error.
package pskfile

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
)

// PSK length bounds (spec: 16..512 bytes).
const (
	MinKey = 16
	MaxKey = 512
)

// DecodeHex decodes a hex PSK (an optional 0x prefix is allowed) of
// MinKey..MaxKey bytes.
func DecodeHex(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) > 2*MaxKey+2 {
		return nil, fmt.Errorf("%d hex digits, want at most %d", len(s), 2*MaxKey)
	}
	k, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not a hex string (of even length, digits 0-9 a-f)")
	}
	if len(k) < MinKey || len(k) > MaxKey {
		return nil, fmt.Errorf("%d bytes, want %d..%d", len(k), MinKey, MaxKey)
	}
	return k, nil
}

// PSK file formats (--psk-file-format).
const (
	FormatAuto    = "auto"
	FormatGnuTLS  = "gnutls"
	FormatStunnel = "stunnel"
)

// stunnel's limits (options.c): a key of at least 16 characters, taken as
// its ASCII bytes; identities of at most 128 bytes.
const (
	stunnelMinKey   = 16
	stunnelMaxKey   = 256
	stunnelMaxIdent = 128
)

// Entry is one identity and its key, in file order.
type Entry struct {
	ID  string
	Key []byte
}

// Parse parses a PSK file. format is auto, gnutls or stunnel;
// auto takes the file as GnuTLS's identity:hexkey if every key is hex of
// 16..512 bytes, else as stunnel's identity:ascii-key (the identity ends at
// the first colon there, at the last one in GnuTLS format). It returns the
// entries and the format used. Errors name the file and line.
func Parse(data []byte, name, format string) ([]Entry, string, error) {
	switch format {
	case FormatGnuTLS:
		e, err := parseGnuTLSPSK(data, name)
		return e, format, err
	case FormatStunnel:
		e, err := parseStunnelPSK(data, name)
		return e, format, err
	case FormatAuto, "":
		e, gerr := parseGnuTLSPSK(data, name)
		if gerr == nil {
			return e, FormatGnuTLS, nil
		}
		e, serr := parseStunnelPSK(data, name)
		if serr == nil {
			return e, FormatStunnel, nil
		}
		return nil, "", fmt.Errorf("%w (as stunnel PSKsecrets: %v)", gerr, trimFilePrefix(serr))
	}
	return nil, "", fmt.Errorf("invalid --psk-file-format %q: want auto, gnutls or stunnel", format)
}

func trimFilePrefix(err error) string {
	return strings.TrimPrefix(err.Error(), "--psk-file ")
}

// pskLines calls f for each non-blank, non-comment line with its number.
func pskLines(data []byte, f func(n int, line string) error) error {
	n := 0
	for len(data) > 0 {
		n++
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		if err := f(n, s); err != nil {
			return err
		}
	}
	return nil
}

func parseGnuTLSPSK(data []byte, name string) ([]Entry, error) {
	var out []Entry
	err := pskLines(data, func(n int, line string) error {
		i := strings.LastIndexByte(line, ':')
		if i <= 0 {
			return fmt.Errorf("--psk-file %s:%d: want identity:hexkey", name, n)
		}
		k, err := DecodeHex(line[i+1:])
		if err != nil {
			return fmt.Errorf("--psk-file %s:%d: key: %w", name, n, err)
		}
		if i > 65535 {
			return fmt.Errorf("--psk-file %s:%d: identity longer than 65535 bytes", name, n)
		}
		out = append(out, Entry{ID: line[:i], Key: k})
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("--psk-file %s: no keys", name)
	}
	return out, err
}

func parseStunnelPSK(data []byte, name string) ([]Entry, error) {
	var out []Entry
	err := pskLines(data, func(n int, line string) error {
		id, key, ok := strings.Cut(line, ":")
		if !ok || id == "" {
			return fmt.Errorf("--psk-file %s:%d: want identity:key", name, n)
		}
		if len(id) > stunnelMaxIdent {
			return fmt.Errorf("--psk-file %s:%d: identity longer than %d bytes", name, n, stunnelMaxIdent)
		}
		if len(key) < stunnelMinKey || len(key) > stunnelMaxKey {
			return fmt.Errorf("--psk-file %s:%d: key of %d characters, want %d..%d", name, n, len(key), stunnelMinKey, stunnelMaxKey)
		}
		for i := 0; i < len(key); i++ {
			if key[i] < 0x20 || key[i] > 0x7e {
				return fmt.Errorf("--psk-file %s:%d: key is not printable ASCII", name, n)
			}
		}
		// As stunnel 5 does: a key that is valid hex of at least 16
		// bytes is decoded, any other is taken as its characters.
		if k, err := hex.DecodeString(key); err == nil && len(k) >= MinKey {
			out = append(out, Entry{ID: id, Key: k})
			return nil
		}
		out = append(out, Entry{ID: id, Key: []byte(key)})
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("--psk-file %s: no keys", name)
	}
	return out, err
}
