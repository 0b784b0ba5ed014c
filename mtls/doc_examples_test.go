package mtls_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The package documentation (what go doc ./mtls prints) names every
// runnable example, and only those that exist.
func TestPackageDocNamesExamples(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bExample[A-Z_]\w*`).FindAllString(string(doc), -1) {
		named[m] = true
	}
	files, _ := filepath.Glob("*_test.go")
	have := map[string]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^func (Example\w*)\(\)`).FindAllStringSubmatch(string(src), -1) {
			have[m[1]] = true
		}
	}
	var missing, stale []string
	for e := range have {
		if !named[e] {
			missing = append(missing, e)
		}
	}
	for e := range named {
		if !have[e] {
			stale = append(stale, e)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(have) == 0 || len(missing)+len(stale) > 0 {
		t.Fatalf("doc.go does not name examples %s; names missing ones %s", strings.Join(missing, ", "), strings.Join(stale, ", "))
	}
}
