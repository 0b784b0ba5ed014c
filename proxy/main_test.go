package proxy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The end-to-end tests and benchmarks drive the built mtls binary, built
// once here. A build failure fails only the tests that need the binary.
var (
	mtlsBin      string
	mtlsBuildErr error
)

func TestMain(m *testing.M) {
	if addr := os.Getenv("MTLS_SLOWLORIS_ADDR"); addr != "" {
		runSlowloris(addr, os.Getenv("MTLS_SLOWLORIS_MODE"))
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "proxy-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mtlsBin = filepath.Join(dir, "mtls")
	if fuzzWorker() {
		mtlsBuildErr = fmt.Errorf("fuzz workers do not build cmd/mtls")
	} else if out, err := exec.Command("go", "build", "-o", mtlsBin, "../cmd/mtls").CombinedOutput(); err != nil {
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

// fuzzWorker reports whether this process is fuzzing (coordinator or
// worker), which runs fuzz targets only.
func fuzzWorker() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzzworker") || strings.HasPrefix(a, "-test.fuzz=") && a != "-test.fuzz=" {
			return true
		}
	}
	return false
}
