package dta

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
