package dtaclient

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoServerDependencies: an endpoint that only enrolls and renews links
// neither the D-TA server nor a database driver. The check runs `go list
// -deps` on this package and on the wire package it shares with the server.
func TestNoServerDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list this package's dependencies: %v", err)
	}
	// The server and its store (exactly that package: its sub-packages
	// dtaclient and dtawire are the client side), and every package of the
	// SQL layer and of both database drivers.
	server := "github.com/milagro-go/milagro/dta"
	forbidden := []string{"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx"}
	for _, pkg := range []string{"github.com/milagro-go/milagro/dta/dtaclient", "github.com/milagro-go/milagro/dta/dtawire"} {
		out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) == 0 || deps[len(deps)-1] != pkg {
			t.Fatalf("go list -deps %s did not list the package itself last: %q", pkg, out)
		}
		for _, d := range deps {
			if d == server {
				t.Errorf("%s links the D-TA server package %s", pkg, d)
			}
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s links %s", pkg, d)
				}
			}
		}
	}
}
