package dtaclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// Deployment is the public deployment file the D-TA operators publish
// together and endpoints receive with their codes: every D-TA of the
// deployment, by fingerprint and address. A key combined from fewer than
// all of them does not work, so `keys enroll --deployment` refuses to
// start without a code for each.
type Deployment struct {
	Version int             `json:"version"`
	DTAs    []DeploymentDTA `json:"dtas"`
}

// DeploymentDTA is one D-TA of a Deployment.
type DeploymentDTA struct {
	Fingerprint string `json:"fingerprint"`
	Address     string `json:"address"`
}

const (
	deploymentVersion = 1
	maxDeploymentSize = 16 << 10
)

// ParseDeployment decodes and checks a deployment file: strict JSON,
// version 1, 1..16 D-TAs with distinct fingerprints (16 lower-case hex)
// and addresses.
func ParseDeployment(data []byte) (*Deployment, error) {
	var d Deployment
	if err := dtawire.DecodeStrict(bytes.NewReader(data), maxDeploymentSize, &d); err != nil {
		return nil, fmt.Errorf("dta: deployment file: %w", err)
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	return &d, nil
}

func (d *Deployment) check() error {
	if d.Version != deploymentVersion {
		return fmt.Errorf("dta: deployment file: version %d, want %d", d.Version, deploymentVersion)
	}
	if len(d.DTAs) == 0 || len(d.DTAs) > maxRenewalDTAs {
		return fmt.Errorf("dta: deployment file: want 1..%d D-TAs, have %d", maxRenewalDTAs, len(d.DTAs))
	}
	seen := map[string]bool{}
	for i, e := range d.DTAs {
		fp, err := pairing.ParseFingerprint(e.Fingerprint)
		if err != nil || fp.String() != e.Fingerprint {
			return fmt.Errorf("dta: deployment file: D-TA %d: fingerprint %q: want 16 lower-case hex digits", i+1, printableMsg([]byte(e.Fingerprint)))
		}
		if seen[e.Fingerprint] {
			return fmt.Errorf("dta: deployment file: D-TA %s listed twice", e.Fingerprint)
		}
		seen[e.Fingerprint] = true
		if e.Address == "" || len(e.Address) > maxAddrLen || strings.ContainsAny(e.Address, " \t\r\n/") || !strings.Contains(e.Address, ":") {
			return fmt.Errorf("dta: deployment file: D-TA %s: address %q: want host:port", e.Fingerprint, printableMsg([]byte(e.Address)))
		}
	}
	return nil
}

// NewDeployment builds a deployment from fingerprint → address pairs
// (sorted by fingerprint, so every operator writes the same file).
func NewDeployment(dtas map[string]string) (*Deployment, error) {
	d := &Deployment{Version: deploymentVersion}
	for fp, addr := range dtas {
		d.DTAs = append(d.DTAs, DeploymentDTA{Fingerprint: strings.ToLower(fp), Address: addr})
	}
	sort.Slice(d.DTAs, func(i, j int) bool { return d.DTAs[i].Fingerprint < d.DTAs[j].Fingerprint })
	return d, d.check()
}

// Marshal encodes the deployment file.
func (d *Deployment) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// LoadDeployment reads a deployment file (public: no mode check).
func LoadDeployment(path string) (*Deployment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDeploymentSize+1))
	if err != nil {
		return nil, err
	}
	return ParseDeployment(data)
}

// CheckCodes checks, before any code is used, that codes has exactly one
// code for every D-TA of the deployment, each given with the deployment's
// address for that D-TA.
func (d *Deployment) CheckCodes(codes []DTACode) error {
	byFP := map[string]DTACode{}
	for _, c := range codes {
		fp := c.Code.DTA.String()
		if _, dup := byFP[fp]; dup {
			return fmt.Errorf("dta: two codes for D-TA %s", fp)
		}
		byFP[fp] = c
	}
	var missing []string
	for _, e := range d.DTAs {
		c, ok := byFP[e.Fingerprint]
		if !ok {
			missing = append(missing, "D-TA "+e.Fingerprint+" at "+e.Address)
			continue
		}
		if c.Address != e.Address {
			return fmt.Errorf("dta: the code for D-TA %s is given with address %s, the deployment file says %s", e.Fingerprint, c.Address, e.Address)
		}
		delete(byFP, e.Fingerprint)
	}
	if len(missing) > 0 {
		return fmt.Errorf("dta: the deployment has %d D-TAs and a key works only with a share from each: no code for %s (no code was used)",
			len(d.DTAs), strings.Join(missing, ", "))
	}
	for fp := range byFP {
		return fmt.Errorf("dta: a code is for D-TA %s, which the deployment file does not list (no code was used)", fp)
	}
	return nil
}
