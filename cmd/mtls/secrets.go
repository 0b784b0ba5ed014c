package main

// Secrets from files: PSK files in GnuTLS psk.txt (identity:hexkey) and
// stunnel PSKsecrets (identity:ascii-key) format, and the PIN file.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/internal/pskfile"
)

// maxSecretFileSize bounds what is read of a PSK or PIN file.
const maxSecretFileSize = 1 << 20

// readSecretFile reads a small secret file, warning when group or others
// may read it.
func readSecretFile(log *slog.Logger, flag, name string) ([]byte, error) {
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
		log.Warn("secret file is readable by group or others; make it private (chmod 600, or defaultMode: 0400 for a Kubernetes Secret volume)",
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
func readPSKFile(c *cli.Context, name string) ([]pskfile.Entry, error) {
	data, err := readSecretFile(loggerOf(c), "psk-file", name)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	entries, format, err := pskfile.Parse(data, name, c.String("psk-file-format"))
	if err != nil {
		return nil, err
	}
	loggerOf(c).Debug("read PSK file", "file", name, "format", format, "keys", len(entries))
	return entries, nil
}

// pinValue returns the PIN for a PIN token and where it came from: the
// file of --pin-file (read again on every call, so a reload sees a new one),
// else --pin or MTLS_PIN. given is false when there is none. It never sets
// a flag: a reload must see the flags as they were given.
func pinValue(c *cli.Context) (pin, from string, given bool, err error) {
	if !hasFlag(c, "pin") {
		return "", "", false, nil
	}
	f := c.String("pin-file")
	if f == "" {
		if !c.IsSet("pin") {
			return "", "", false, nil
		}
		warnSecretFlag(c, "pin", "MTLS_PIN", "--pin-file or MTLS_PIN")
		return c.String("pin"), "--pin", true, nil
	}
	if c.IsSet("pin") {
		return "", "", false, errors.New("--pin and --pin-file are exclusive (MTLS_PIN counts as --pin)")
	}
	data, err := readSecretFile(loggerOf(c), "pin-file", f)
	if err != nil {
		return "", "", false, err
	}
	pin = strings.TrimSpace(string(data))
	clear(data)
	if pin == "" || len(pin) > 32 {
		return "", "", false, fmt.Errorf("--pin-file %s: want the PIN on one line", f)
	}
	return pin, "--pin-file " + f, true, nil
}

// hasFlag reports whether the command defines the flag name.
func hasFlag(c *cli.Context, name string) bool {
	if c.Command == nil {
		return false
	}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}
