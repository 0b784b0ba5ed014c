package main

// Secrets from files: PSK files in GnuTLS psk.txt (identity:hexkey) and
// stunnel PSKsecrets (identity:ascii-key) format, and the PIN file.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// PSK file formats (--psk-file-format).
const (
	pskFormatAuto    = "auto"
	pskFormatGnuTLS  = "gnutls"
	pskFormatStunnel = "stunnel"
)

// maxSecretFileSize bounds what is read of a PSK or PIN file.
const maxSecretFileSize = 1 << 20

// stunnel's limits (options.c): a key of at least 16 characters, taken as
// its ASCII bytes; identities of at most 128 bytes.
const (
	stunnelMinKey   = 16
	stunnelMaxKey   = 256
	stunnelMaxIdent = 128
)

// pskEntry is one identity and its key, in file order.
type pskEntry struct {
	id  string
	key []byte
}

// parsePSKSecrets parses a PSK file. format is auto, gnutls or stunnel;
// auto takes the file as GnuTLS's identity:hexkey if every key is hex of
// 16..512 bytes, else as stunnel's identity:ascii-key (the identity ends at
// the first colon there, at the last one in GnuTLS format). It returns the
// entries and the format used. Errors name the file and line.
func parsePSKSecrets(data []byte, name, format string) ([]pskEntry, string, error) {
	switch format {
	case pskFormatGnuTLS:
		e, err := parseGnuTLSPSK(data, name)
		return e, format, err
	case pskFormatStunnel:
		e, err := parseStunnelPSK(data, name)
		return e, format, err
	case pskFormatAuto, "":
		e, gerr := parseGnuTLSPSK(data, name)
		if gerr == nil {
			return e, pskFormatGnuTLS, nil
		}
		e, serr := parseStunnelPSK(data, name)
		if serr == nil {
			return e, pskFormatStunnel, nil
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

func parseGnuTLSPSK(data []byte, name string) ([]pskEntry, error) {
	var out []pskEntry
	err := pskLines(data, func(n int, line string) error {
		i := strings.LastIndexByte(line, ':')
		if i <= 0 {
			return fmt.Errorf("--psk-file %s:%d: want identity:hexkey", name, n)
		}
		k, err := parsePSK(line[i+1:])
		if err != nil {
			return fmt.Errorf("--psk-file %s:%d: key: %w", name, n, err)
		}
		if i > 65535 {
			return fmt.Errorf("--psk-file %s:%d: identity longer than 65535 bytes", name, n)
		}
		out = append(out, pskEntry{id: line[:i], key: k})
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("--psk-file %s: no keys", name)
	}
	return out, err
}

func parseStunnelPSK(data []byte, name string) ([]pskEntry, error) {
	var out []pskEntry
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
		out = append(out, pskEntry{id: id, key: []byte(key)})
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("--psk-file %s: no keys", name)
	}
	return out, err
}

// readSecretFile reads a small secret file, warning when group or others
// may read it.
func readSecretFile(flag, name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("--%s: %s is not a regular file", flag, name)
	}
	if st.Mode().Perm()&0o077 != 0 {
		logger.Warn("secret file is readable by group or others; make it private (chmod 600, or defaultMode: 0400 for a Kubernetes Secret volume)",
			"flag", flag, "file", name, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", flag, name, err)
	}
	if len(data) > maxSecretFileSize {
		clear(data)
		return nil, fmt.Errorf("--%s %s: larger than %d bytes", flag, name, maxSecretFileSize)
	}
	return data, nil
}

// readPSKFile reads --psk-file in the format of --psk-file-format.
func readPSKFile(c *cli.Context, name string) ([]pskEntry, error) {
	data, err := readSecretFile("psk-file", name)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	entries, format, err := parsePSKSecrets(data, name, c.String("psk-file-format"))
	if err != nil {
		return nil, err
	}
	logger.Debug("read PSK file", "file", name, "format", format, "keys", len(entries))
	return entries, nil
}

// applyPINFile reads --pin-file into --pin (which the Milagro credential
// flags read), and warns about a PIN given on the command line.
func applyPINFile(c *cli.Context) error {
	if !hasFlag(c, "pin") {
		return nil
	}
	f := c.String("pin-file")
	if f == "" {
		warnSecretFlag(c, "pin", "MTLS_PIN", "--pin-file or MTLS_PIN")
		return nil
	}
	if c.IsSet("pin") {
		return errors.New("--pin and --pin-file are exclusive")
	}
	data, err := readSecretFile("pin-file", f)
	if err != nil {
		return err
	}
	pin := strings.TrimSpace(string(data))
	clear(data)
	if pin == "" || len(pin) > 32 {
		return fmt.Errorf("--pin-file %s: want the PIN on one line", f)
	}
	return c.Set("pin", pin)
}

// hasFlag reports whether the command defines the flag name.
func hasFlag(c *cli.Context, name string) bool {
	for _, n := range c.FlagNames() {
		if n == name {
			return true
		}
	}
	return false
}
