package proxy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The end-to-end tests and benchmarks drive the built mtls binary, built
// once here. A build failure fails only the tests that need the binary.
var (
	mtlsBin      string
	mtlsBuildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "proxy-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mtlsBin = filepath.Join(dir, "mtls")
	out, err := exec.Command("go", "build", "-o", mtlsBin, "../cmd/mtls").CombinedOutput()
	if err != nil {
		mtlsBuildErr = fmt.Errorf("building cmd/mtls: %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needBinary(t testing.TB) string {
	t.Helper()
	if mtlsBuildErr != nil {
		t.Fatal(mtlsBuildErr)
	}
	return mtlsBin
}
