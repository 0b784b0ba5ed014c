package pairing

import (
	"errors"
	"testing"
)

// TestCheckIDLookAlikes covers the identity rule against look-alike
// identities: NFC, no format character, no white space at either end.
func TestCheckIDLookAlikes(t *testing.T) {
	cases := []struct {
		name string
		id   string
		ok   bool
	}{
		{"ascii", "alice@example.com", true},
		{"nfc é", "caf\u00e9", true},
		{"nfd é", "cafe\u0301", false},
		{"zero-width space", "ali\u200bce", false},
		{"right-to-left override", "alice\u202egnp.exe", false},
		{"byte order mark", "\ufeffalice", false},
		{"soft hyphen", "ali\u00adce", false},
		{"leading space", " alice", false},
		{"trailing space", "alice ", false},
		{"trailing no-break space", "alice\u00a0", false},
		{"inner space", "alice smith", true},
		{"cyrillic look-alike", "\u0430lice", true},
		{"control", "ali\x00ce", false},
		{"empty", "", false},
		{"not utf-8", "ali\xffce", false},
	}
	for _, c := range cases {
		err := CheckID(c.id)
		if c.ok && err != nil {
			t.Errorf("%s: CheckID(%q) = %v, want nil", c.name, c.id, err)
		}
		if !c.ok && !errors.Is(err, ErrInvalidID) {
			t.Errorf("%s: CheckID(%q) = %v, want ErrInvalidID", c.name, c.id, err)
		}
	}
}
