package dta

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
)

// TestLookAlikeIdentities: `ta enroll` refuses identities with a
// zero-width space, a bidirectional override or white space at either end
// (pairing.CheckID) with a clear message; a Cyrillic look-alike is
// accepted but `ta list` and `ta audit` print its code points; and
// /v1/enroll refuses a code whose identity breaks the rule (a store made
// before the rule).
func TestLookAlikeIdentities(t *testing.T) {
	root := t.TempDir()
	d := newDTADir(t, root, 1)
	for _, id := range []string{"a\u200blice", "\u202ealice", " alice", "alice\t"} {
		_, errOut, err := runMtls(t, d.dir, "ta", "enroll", "--db", d.db, "--kind", "client", "--id", id)
		if err == nil || !strings.Contains(errOut, "identity") {
			t.Errorf("ta enroll --id %q: err %v, stderr %s", id, err, errOut)
		}
	}
	cyr := "\u0430lice" // Cyrillic а
	_, errOut, err := runMtls(t, d.dir, "ta", "enroll", "--db", d.db, "--kind", "client", "--id", cyr)
	if err != nil || !strings.Contains(errOut, `\u0430lice`) {
		t.Fatalf("Cyrillic look-alike: err %v, stderr %s", err, errOut)
	}
	for _, cmd := range [][]string{{"ta", "list", "--db", d.db}, {"ta", "audit", "--db", d.db}} {
		out := mustMtls(t, d.dir, cmd...)
		if !strings.Contains(out, `"\u0430lice"`) || strings.Contains(out, cyr) {
			t.Errorf("%s does not show the code point:\n%s", cmd[1], out)
		}
	}

	// /v1/enroll with a code row naming a zero-width identity.
	td := startDTA(t, nil)
	codes := codesFor(t, []*testDTA{td}, dtawire.KindClient, "bob")
	if _, err := td.store.db.Exec(`UPDATE codes SET identity=? WHERE id=?`, "b\u200bob", codes[0].Code.ID.String()); err != nil {
		t.Fatal(err)
	}
	_, err = dtaclient.Enroll(context.Background(), &dtaclient.ClientOptions{Timeout: 10 * time.Second}, codes)
	if !dtaclient.IsCode(err, dtawire.CodeBadRequest) || !strings.Contains(err.Error(), "identity") {
		t.Fatalf("/v1/enroll with a look-alike identity: %v", err)
	}
}
