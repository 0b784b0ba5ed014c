package dtaclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// Renewal is what an enrolled endpoint keeps to fetch permits and renew its
// credentials: per D-TA, the address, fingerprint, kind, identity and
// renewal secret. It is a secret (mode 0600) and is stored as JSON.
type Renewal struct {
	Version  int          `json:"version"`
	Kind     dtawire.Kind `json:"kind"`
	Identity string       `json:"identity"`
	DTAs     []RenewalDTA `json:"dtas"`
	// Deployment is the deployment file enrolled against, if any.
	Deployment *Deployment `json:"deployment,omitempty"`
}

// RenewalDTA is one D-TA's entry of a Renewal.
type RenewalDTA struct {
	Address     string       `json:"address"`
	Fingerprint string       `json:"fingerprint"`
	Kind        dtawire.Kind `json:"kind"`
	Identity    string       `json:"identity"`
	Secret      string       `json:"renewal_secret"`
	// PendingSecret is a rotated secret not used yet (see Rotate).
	PendingSecret string `json:"pending_secret,omitempty"`
}

const (
	renewalVersion = 1
	maxRenewalDTAs = 16
	maxRenewalSize = 64 << 10
	maxAddrLen     = 255
)

// String names the D-TA for messages: fingerprint and address.
func (d *RenewalDTA) String() string { return "D-TA " + d.Fingerprint + " at " + d.Address }

// Credential returns the PSK credential: the pending secret when pending is set.
func (d *RenewalDTA) Credential(pending bool) (Credential, error) {
	s := d.Secret
	if pending {
		s = d.PendingSecret
	}
	sec, err := dtawire.DecodeSecret(s)
	if err != nil {
		return Credential{}, err
	}
	return Credential{Identity: dtawire.PSKIdentity{Kind: d.Kind, Identity: d.Identity}.String(), PSK: sec[:], ServerName: dtawire.KeyID(sec[:])}, nil
}

// ParseRenewal decodes and checks a renewal file: strict JSON, 1..16 D-TAs
// with distinct valid fingerprints, one kind and identity throughout, valid
// secrets.
func ParseRenewal(data []byte) (*Renewal, error) {
	var r Renewal
	if err := dtawire.DecodeStrict(bytes.NewReader(data), maxRenewalSize, &r); err != nil {
		return nil, fmt.Errorf("dta: renewal file: %w", err)
	}
	if r.Version != renewalVersion {
		return nil, fmt.Errorf("dta: renewal file: version %d, want %d", r.Version, renewalVersion)
	}
	if _, err := dtawire.ParseKind(string(r.Kind)); err != nil {
		return nil, fmt.Errorf("dta: renewal file: %w", err)
	}
	if err := dtawire.CheckIdentity(r.Kind, r.Identity); err != nil {
		return nil, fmt.Errorf("dta: renewal file: %w", err)
	}
	if len(r.DTAs) == 0 || len(r.DTAs) > maxRenewalDTAs {
		return nil, fmt.Errorf("dta: renewal file: want 1..%d D-TAs, have %d", maxRenewalDTAs, len(r.DTAs))
	}
	if r.Deployment != nil {
		if err := r.Deployment.check(); err != nil {
			return nil, fmt.Errorf("dta: renewal file: %w", err)
		}
	}
	seen := map[pairing.Fingerprint]bool{}
	for i := range r.DTAs {
		d := &r.DTAs[i]
		fp, err := pairing.ParseFingerprint(d.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("dta: renewal file: D-TA %d: %w", i+1, err)
		}
		if seen[fp] {
			return nil, fmt.Errorf("dta: renewal file: D-TA %s listed twice", fp)
		}
		seen[fp] = true
		d.Fingerprint = fp.String()
		if d.Address == "" || len(d.Address) > maxAddrLen {
			return nil, fmt.Errorf("dta: renewal file: D-TA %s: address missing or too long", fp)
		}
		if d.Kind != r.Kind || d.Identity != r.Identity {
			return nil, fmt.Errorf("dta: renewal file: D-TA %s is for %s %q, the file for %s %q", fp, d.Kind, d.Identity, r.Kind, r.Identity)
		}
		if _, err := dtawire.DecodeSecret(d.Secret); err != nil {
			return nil, fmt.Errorf("dta: renewal file: D-TA %s: %w", fp, err)
		}
		if d.PendingSecret != "" {
			if _, err := dtawire.DecodeSecret(d.PendingSecret); err != nil {
				return nil, fmt.Errorf("dta: renewal file: D-TA %s: pending: %w", fp, err)
			}
		}
	}
	return &r, nil
}

// Marshal encodes the renewal file.
func (r *Renewal) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// LoadRenewal reads a renewal file, refusing one that group or others may
// read.
func LoadRenewal(path string) (*Renewal, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("dta: renewal file %s is accessible by group or others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRenewalSize+1))
	defer clear(data)
	if err != nil {
		return nil, err
	}
	return ParseRenewal(data)
}

// WriteRenewal writes r to path with mode 0600: a new file unless
// overwrite, and then atomically (a temporary file renamed over it).
func WriteRenewal(path string, r *Renewal, overwrite bool) error {
	data, err := r.Marshal()
	if err != nil {
		return err
	}
	defer clear(data)
	if !overwrite {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

var errNoDTAs = errors.New("dta: no D-TAs")
