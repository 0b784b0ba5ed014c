package dta

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
)

// runMtlsIn runs mtls with the given stdin and extra environment.
func runMtlsIn(t *testing.T, dir, stdin string, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mtlsBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), err
}

// TestEnrollCodesOffTheCommandLine: `keys enroll` takes its codes from a
// file, standard input or the environment (none of them in argv, where
// other local users read them), and warns when a code is given inline.
func TestEnrollCodesOffTheCommandLine(t *testing.T) {
	root := t.TempDir()
	var ds []*dtaDir
	var ps []*serveProc
	for i := 1; i <= 3; i++ {
		d := newDTADir(t, root, i)
		ds = append(ds, d)
		ps = append(ps, d.serve(t))
	}
	ep := filepath.Join(root, "ep")
	os.Mkdir(ep, 0o700)
	codeFile := filepath.Join(ep, "code1")
	if err := os.WriteFile(codeFile, []byte(ds[0].code(t, "client", "carol")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin := ds[1].code(t, "client", "carol") + "\n"
	env := []string{"CODE3=" + ds[2].code(t, "client", "carol")}
	out, errOut, err := runMtlsIn(t, ep, stdin, env, "keys", "enroll", "--out", "c.key", "--renewal", "c.renewal",
		"--dta", ps[0].addr+"=@"+codeFile, "--dta", ps[1].addr+"=@-", "--dta", ps[2].addr+"=env:CODE3")
	if err != nil || !strings.Contains(out, "enrolled client") {
		t.Fatalf("codes from a file, stdin and the environment: %v\n%s%s", err, out, errOut)
	}
	if strings.Contains(errOut, "command line is visible") {
		t.Fatalf("warned although no code was on the command line:\n%s", errOut)
	}
	// Inline: works, with a warning.
	_, errOut, err = runMtlsIn(t, ep, "", nil, "keys", "enroll", "--out", "d.key", "--renewal", "d.renewal",
		"--dta", ps[0].addr+"="+ds[0].code(t, "p2p", "dora"))
	if err != nil || !strings.Contains(errOut, "command line is visible") {
		t.Fatalf("inline code: err %v, no warning:\n%s", err, errOut)
	}
	// A missing stdin line or variable is a clear error, not a hang.
	_, errOut, err = runMtlsIn(t, ep, "", nil, "keys", "enroll", "--out", "e.key", "--renewal", "e.renewal", "--dta", ps[0].addr+"=@-")
	if err == nil || !strings.Contains(errOut, "standard input") {
		t.Fatalf("empty stdin: %v\n%s", err, errOut)
	}
	_, errOut, err = runMtlsIn(t, ep, "", nil, "keys", "enroll", "--out", "e.key", "--renewal", "e.renewal", "--dta", ps[0].addr+"=env:NO_SUCH_VAR_HERE")
	if err == nil || !strings.Contains(errOut, "NO_SUCH_VAR_HERE") {
		t.Fatalf("unset variable: %v\n%s", err, errOut)
	}
}

// TestClientErrorsSayWhere: a code sent to the wrong D-TA names the D-TA
// the code belongs to and the address that answered; a closed port names
// the address, not an internal URL; `ta audit` shows permit days as dates.
func TestClientErrorsSayWhere(t *testing.T) {
	root := t.TempDir()
	d1, d2 := newDTADir(t, root, 1), newDTADir(t, root, 2)
	p1, p2 := d1.serve(t), d2.serve(t)
	ep := filepath.Join(root, "ep")
	os.Mkdir(ep, 0o700)
	code := filepath.Join(ep, "code")
	os.WriteFile(code, []byte(d1.code(t, "client", "gus")), 0o600)
	_, errOut, err := runMtlsIn(t, ep, "", nil, "keys", "enroll", "--out", "g.key", "--renewal", "g.renewal", "--dta", p2.addr+"=@"+code)
	if err == nil || !strings.Contains(errOut, "answering at "+p2.addr+" does not know code") || !strings.Contains(errOut, "belongs to D-TA "+d1.fp) {
		t.Fatalf("code of D-TA 1 at D-TA 2: %v\n%s", err, errOut)
	}
	p2.kill()
	_, errOut, err = runMtlsIn(t, ep, "", nil, "keys", "enroll", "--out", "g.key", "--renewal", "g.renewal", "--dta", p2.addr+"=@"+code)
	if err == nil || strings.Contains(errOut, "http://dta") || !strings.Contains(errOut, "cannot reach the D-TA at "+p2.addr) {
		t.Fatalf("closed port: %v\n%s", err, errOut)
	}
	mustMtls(t, ep, "keys", "enroll", "--out", "g.key", "--renewal", "g.renewal", "--dta", p1.addr+"=@"+code)
	mustMtls(t, ep, "keys", "renew", "--renewal", "g.renewal", "--out-dir", ".")
	audit := mustMtls(t, d1.dir, "ta", "audit", "--db", d1.db)
	today := time.Now().UTC().Format("2006-01-02")
	if !strings.Contains(audit, "days "+today) {
		t.Fatalf("ta audit does not show the permit day as a date (%s):\n%s", today, audit)
	}
}

// TestPermitAheadZeroRefused: `ta serve --permit-ahead 0` is an error, not
// a silent 1.
func TestPermitAheadZeroRefused(t *testing.T) {
	d := newDTADir(t, t.TempDir(), 1)
	for _, bad := range [][]string{{"--permit-ahead", "0"}, {"--permit-ahead", "8"}, {"--permit-ahead-hours", "0"}, {"--permit-ahead-hours", "169"}} {
		args := append([]string{"ta", "serve", "--master", d.share, "--db", d.db, "--listen", "127.0.0.1:0"}, bad...)
		_, errOut, err := runMtls(t, d.dir, args...)
		if err == nil || !strings.Contains(errOut, bad[0]) {
			t.Errorf("ta serve %v: err %v, stderr %s", bad, err, errOut)
		}
	}
}

// TestDeploymentFile: `ta deployment` writes the file from the operators'
// fingerprints; `keys enroll --deployment` with codes for 2 of its 3 D-TAs
// fails naming the missing one and uses no code; with all 3 it enrolls and
// the renewal file records the deployment.
func TestDeploymentFile(t *testing.T) {
	root := t.TempDir()
	var ds []*dtaDir
	var ps []*serveProc
	args := []string{"ta", "deployment", "--out", filepath.Join(root, "deployment.json")}
	for i := 1; i <= 3; i++ {
		d := newDTADir(t, root, i)
		ds = append(ds, d)
		ps = append(ps, d.serve(t))
		args = append(args, "--dta", d.fp+"="+ps[i-1].addr)
	}
	mustMtls(t, root, args...)
	ep := filepath.Join(root, "ep")
	os.Mkdir(ep, 0o700)
	var dtaArgs []string
	for i, d := range ds {
		f := filepath.Join(ep, fmt.Sprintf("code%d", i))
		os.WriteFile(f, []byte(d.code(t, "client", "hal")), 0o600)
		dtaArgs = append(dtaArgs, "--dta", ps[i].addr+"=@"+f)
	}
	base := []string{"keys", "enroll", "--out", "h.key", "--renewal", "h.renewal", "--deployment", filepath.Join(root, "deployment.json")}
	_, errOut, err := runMtls(t, ep, append(base, dtaArgs[:4]...)...)
	if err == nil || !strings.Contains(errOut, "no code for D-TA "+ds[2].fp) {
		t.Fatalf("2 of 3 codes: %v\n%s", err, errOut)
	}
	if list := mustMtls(t, ds[0].dir, "ta", "list", "--db", ds[0].db, "--json"); strings.Contains(list, `"used_at"`) {
		t.Fatalf("a code was used although the enrollment was refused:\n%s", list)
	}
	out := mustMtls(t, ep, append(base, dtaArgs...)...)
	if !strings.Contains(out, "with 3 D-TAs") {
		t.Fatal(out)
	}
	r, err := dtaclient.LoadRenewal(filepath.Join(ep, "h.renewal"))
	if err != nil || r.Deployment == nil || len(r.Deployment.DTAs) != 3 {
		t.Fatalf("renewal file: %v %+v", err, r)
	}
}
