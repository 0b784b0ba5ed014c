package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// DeniedError is returned when the ACL refuses an identity.
type DeniedError struct {
	ID     string
	Reason string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("proxy: identity %q denied: %s", e.ID, e.Reason)
}

// ACL decides which authenticated peer identities may use the proxy. The
// zero value (and nil) denies everything. An ACL is immutable once built.
type ACL struct {
	all      bool
	ids      map[string]struct{}
	prefixes []string
}

// AllowAll returns an ACL that admits every authenticated identity.
func AllowAll() *ACL { return &ACL{all: true} }

// NewACL builds an ACL from exact identities and prefixes. An empty prefix
// or identity is an error (an empty prefix would admit everyone: say
// AllowAll explicitly).
func NewACL(ids, prefixes []string) (*ACL, error) {
	a := &ACL{ids: make(map[string]struct{}, len(ids))}
	for _, id := range ids {
		if err := checkACLEntry(id); err != nil {
			return nil, fmt.Errorf("proxy: allowed identity: %w", err)
		}
		a.ids[id] = struct{}{}
	}
	for _, p := range prefixes {
		if err := checkACLEntry(p); err != nil {
			return nil, fmt.Errorf("proxy: allowed prefix: %w", err)
		}
		a.prefixes = append(a.prefixes, p)
	}
	return a, nil
}

func checkACLEntry(s string) error {
	if s == "" {
		return errors.New("empty entry (use allow-all to admit every identity)")
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q contains a control character", s)
		}
	}
	return nil
}

// Empty reports whether the ACL admits nobody.
func (a *ACL) Empty() bool {
	return a == nil || (!a.all && len(a.ids) == 0 && len(a.prefixes) == 0)
}

// Check returns nil when id is admitted, else a *DeniedError.
func (a *ACL) Check(id string) error {
	switch {
	case a == nil:
		return &DeniedError{ID: id, Reason: "no ACL configured"}
	case a.all && id != "":
		return nil
	case id == "":
		return &DeniedError{ID: id, Reason: "no authenticated identity"}
	}
	if _, ok := a.ids[id]; ok {
		return nil
	}
	for _, p := range a.prefixes {
		if strings.HasPrefix(id, p) {
			return nil
		}
	}
	return &DeniedError{ID: id, Reason: "not in the allow list"}
}

// String describes the ACL for logs.
func (a *ACL) String() string {
	if a == nil {
		return "deny-all"
	}
	if a.all {
		return "allow-all"
	}
	return fmt.Sprintf("%d identities, %d prefixes", len(a.ids), len(a.prefixes))
}

// Limits for allow files.
const (
	maxAllowFileSize = 4 << 20
	maxAllowLine     = 4096
)

// ParseAllowFile parses an allow file: one identity per line, "prefix:P"
// lines for prefixes, blank lines and lines starting with '#' ignored.
// Surrounding white space is trimmed. Errors name the line.
func ParseAllowFile(r io.Reader) (ids, prefixes []string, err error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxAllowFileSize+1))
	sc.Buffer(make([]byte, 0, 512), maxAllowLine)
	n, total := 0, 0
	for sc.Scan() {
		n++
		total += len(sc.Bytes()) + 1
		if total > maxAllowFileSize {
			return nil, nil, fmt.Errorf("allow file larger than %d bytes", maxAllowFileSize)
		}
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // a UTF-8 byte order mark
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "prefix:"); ok {
			p := strings.TrimSpace(rest)
			if err := checkACLEntry(p); err != nil {
				return nil, nil, fmt.Errorf("line %d: prefix: %w", n, err)
			}
			prefixes = append(prefixes, p)
			continue
		}
		if err := checkACLEntry(line); err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", n, err)
		}
		ids = append(ids, line)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, fmt.Errorf("line %d: longer than %d bytes", n+1, maxAllowLine)
		}
		return nil, nil, err
	}
	return ids, prefixes, nil
}

// ACLSpec is the operator's description of an ACL (the --allow* flags). Load
// builds the ACL, reading the files; call it again to reload.
type ACLSpec struct {
	IDs      []string
	Prefixes []string
	Files    []string
	All      bool
	// AllowEmpty accepts an allow file that lists nobody (it then denies
	// everyone). Without it an empty file is an error: a file truncated
	// or half-written during a deploy must fail the reload, not lock
	// everyone out (--allow-empty).
	AllowEmpty bool
}

// ErrEmptyAllowFile is returned by ACLSpec.Load for an allow file with no
// entry, unless AllowEmpty is set.
var ErrEmptyAllowFile = errors.New("lists no identity or prefix (it would deny everyone; give --allow-empty if that is meant)")

// ErrNoACL is returned by ACLSpec.Load when no access rule was given.
var ErrNoACL = errors.New("proxy: no access control configured: give --allow, --allow-prefix or --allow-file, or --allow-all to admit every authenticated identity")

// Load builds the ACL. With no rule at all it returns ErrNoACL; All
// combined with other rules is an error (it would make them meaningless).
func (s ACLSpec) Load() (*ACL, error) {
	if s.All {
		if len(s.IDs)+len(s.Prefixes)+len(s.Files) > 0 {
			return nil, errors.New("proxy: --allow-all cannot be combined with --allow, --allow-prefix or --allow-file")
		}
		return AllowAll(), nil
	}
	if len(s.IDs)+len(s.Prefixes)+len(s.Files) == 0 {
		return nil, ErrNoACL
	}
	ids := append([]string(nil), s.IDs...)
	prefixes := append([]string(nil), s.Prefixes...)
	for _, name := range s.Files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("proxy: allow file: %w", err)
		}
		i, p, err := ParseAllowFile(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("proxy: allow file %s: %w", name, err)
		}
		if len(i)+len(p) == 0 && !s.AllowEmpty {
			return nil, fmt.Errorf("proxy: allow file %s %w", name, ErrEmptyAllowFile)
		}
		ids = append(ids, i...)
		prefixes = append(prefixes, p...)
	}
	return NewACL(ids, prefixes)
}
