package proxy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestACLCheck(t *testing.T) {
	a, err := NewACL([]string{"alice@example.com", "bob"}, []string{"svc-", "team/"})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{
		"alice@example.com":  true,
		"bob":                true,
		"svc-billing":        true,
		"team/x":             true,
		"":                   false,
		"alice@example.co":   false,
		"alice@example.com ": false,
		"Bob":                false,
		"bobby":              false,
		"svc":                false,
		"xsvc-billing":       false,
	} {
		err := a.Check(id)
		if (err == nil) != want {
			t.Errorf("Check(%q) = %v, want allowed=%v", id, err, want)
		}
		var de *DeniedError
		if err != nil && (!errors.As(err, &de) || de.ID != id || de.Reason == "") {
			t.Errorf("Check(%q): error %v is not a DeniedError naming the identity", id, err)
		}
	}
	if AllowAll().Check("anyone") != nil || AllowAll().Check("") == nil {
		t.Error("AllowAll must admit any non-empty identity and refuse an empty one")
	}
	var nilACL *ACL
	if nilACL.Check("alice") == nil || !nilACL.Empty() {
		t.Error("nil ACL must deny")
	}
	if _, err := NewACL(nil, []string{""}); err == nil {
		t.Error("empty prefix accepted (it would admit everyone)")
	}
	if _, err := NewACL([]string{"a\nb"}, nil); err == nil {
		t.Error("identity with a newline accepted")
	}
}

func TestParseAllowFile(t *testing.T) {
	in := "# comment\n\nalice\n  bob  \r\nprefix:svc-\nprefix: team/ \n#prefix:nope\ncarol # not a comment\n"
	ids, prefixes, err := ParseAllowFile(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ids, "|") != "alice|bob|carol # not a comment" {
		t.Errorf("ids = %q", ids)
	}
	if strings.Join(prefixes, "|") != "svc-|team/" {
		t.Errorf("prefixes = %q", prefixes)
	}
	for _, bad := range []string{
		"prefix:\n",
		"prefix:   \n",
		"alice\x00\n",
		"\xff\xfe\n",
		strings.Repeat("a", maxAllowLine+1) + "\n",
	} {
		if _, _, err := ParseAllowFile(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseAllowFile(%.20q) accepted", bad)
		} else if !strings.Contains(err.Error(), "line 1") {
			t.Errorf("error %q does not name the line", err)
		}
	}
}

func TestACLSpecLoad(t *testing.T) {
	if _, err := (ACLSpec{}).Load(); !errors.Is(err, ErrNoACL) {
		t.Fatalf("no rules: err = %v, want ErrNoACL", err)
	}
	if _, err := (ACLSpec{All: true, IDs: []string{"a"}}).Load(); err == nil {
		t.Fatal("--allow-all combined with --allow accepted")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "allow")
	if err := os.WriteFile(f, []byte("alice\nprefix:svc-\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := ACLSpec{IDs: []string{"bob"}, Files: []string{f}}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alice", "bob", "svc-x"} {
		if a.Check(id) != nil {
			t.Errorf("%s denied", id)
		}
	}
	if a.Check("mallory") == nil {
		t.Error("mallory admitted")
	}
	if _, err := (ACLSpec{Files: []string{filepath.Join(dir, "missing")}}).Load(); err == nil {
		t.Error("missing allow file accepted")
	}
}

func FuzzParseAllowFile(f *testing.F) {
	for _, s := range []string{
		"alice\nbob\n", "# c\nprefix:svc-\n", "prefix:\n", "\r\n\t\n", "a\x00b", "\xff",
		"prefix:prefix:x\n", strings.Repeat("x", 5000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ids, prefixes, err := ParseAllowFile(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		a, err := NewACL(ids, prefixes)
		if err != nil {
			t.Fatalf("parser output rejected by NewACL: %v", err)
		}
		if a.Check("") == nil {
			t.Fatal("empty identity admitted")
		}
		// Check is linear in the number of prefixes: bound the work per input.
		ids, prefixes = ids[:min(len(ids), 64)], prefixes[:min(len(prefixes), 64)]
		for _, id := range ids {
			if id == "" || strings.TrimSpace(id) != id || id[0] == '#' {
				t.Fatalf("bad identity %q", id)
			}
			if a.Check(id) != nil {
				t.Fatalf("listed identity %q denied", id)
			}
		}
		for _, p := range prefixes {
			if p == "" {
				t.Fatal("empty prefix")
			}
			if a.Check(p+"x") != nil {
				t.Fatalf("identity with prefix %q denied", p)
			}
		}
	})
}
