package pskfile

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseFormats(t *testing.T) {
	hexKey := strings.Repeat("a1", 16)
	for _, tc := range []struct {
		name, data, format string
		wantFormat         string
		want               []Entry
		err                string
	}{
		{"gnutls", "# keys\nalice:" + hexKey + "\n\nurn:x:bob:0x" + hexKey + "\n", FormatAuto, FormatGnuTLS,
			[]Entry{{"alice", bytes.Repeat([]byte{0xa1}, 16)}, {"urn:x:bob", bytes.Repeat([]byte{0xa1}, 16)}}, ""},
		{"stunnel auto", "client1:oaP4EishaeSaishei6rio6xeeph3az\nclient2:a:colon:in:the:key:is:fine\n", FormatAuto, FormatStunnel,
			[]Entry{{"client1", []byte("oaP4EishaeSaishei6rio6xeeph3az")}, {"client2", []byte("a:colon:in:the:key:is:fine")}}, ""},
		{"stunnel decodes a hex key, as stunnel does", "c:" + hexKey + "\nd:0123456789abcdefXY\n", FormatStunnel, FormatStunnel,
			[]Entry{{"c", bytes.Repeat([]byte{0xa1}, 16)}, {"d", []byte("0123456789abcdefXY")}}, ""},
		{"stunnel short key", "c:tooshort\n", FormatStunnel, "", nil, "key of 8 characters, want 16..256"},
		{"stunnel control char", "c:0123456789abcdef\x01\n", FormatStunnel, "", nil, "not printable ASCII"},
		{"stunnel long identity", strings.Repeat("i", 129) + ":0123456789abcdefg\n", FormatStunnel, "", nil, "identity longer than 128"},
		{"gnutls forced bad", "alice:zz\n", FormatGnuTLS, "", nil, "f:1: key: not a hex string"},
		{"auto neither", "alice:zz\n", FormatAuto, "", nil, "f:1: key: not a hex string"},
		{"no colon", "alice\n", FormatAuto, "", nil, "f:1: want identity:hexkey"},
		{"empty", "# nothing\n\n", FormatAuto, "", nil, "no keys"},
		{"bad format", "a:b", "pem", "", nil, "invalid --psk-file-format"},
	} {
		got, format, err := Parse([]byte(tc.data), "f", tc.format)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if format != tc.wantFormat || len(got) != len(tc.want) {
			t.Errorf("%s: format %s, %d entries; want %s, %d", tc.name, format, len(got), tc.wantFormat, len(tc.want))
			continue
		}
		for i := range got {
			if got[i].ID != tc.want[i].ID || !bytes.Equal(got[i].Key, tc.want[i].Key) {
				t.Errorf("%s: entry %d = %q:%q, want %q:%q", tc.name, i, got[i].ID, got[i].Key, tc.want[i].ID, tc.want[i].Key)
			}
		}
	}
}

// Errors never quote key material.
func TestErrorsDoNotLeakKeys(t *testing.T) {
	secret := "SECRETsecretSECRET\x01"
	for _, f := range []string{FormatAuto, FormatGnuTLS, FormatStunnel} {
		_, _, err := Parse([]byte("id:"+secret+"\n"), "f", f)
		if err == nil || strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "secretSECRET") {
			t.Errorf("%s: %v", f, err)
		}
	}
	_, _, err := Parse([]byte("id:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), "f", FormatGnuTLS)
	if err == nil || strings.Contains(err.Error(), "'z'") {
		t.Errorf("hex error quotes the key: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("alice:"+strings.Repeat("a1", 16)+"\n# c\n"), FormatAuto)
	f.Add([]byte("client1:oaP4EishaeSaishei6rio6xeeph3az\n"), FormatStunnel)
	f.Add([]byte(":\n:::\n\xff\xfe:0x\n"), FormatGnuTLS)
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		if len(data) > 1<<16 {
			return
		}
		entries, got, err := Parse(data, "f", format)
		if err != nil {
			return
		}
		if got != FormatGnuTLS && got != FormatStunnel {
			t.Fatalf("format %q", got)
		}
		if len(entries) == 0 {
			t.Fatal("no error and no entries")
		}
		for _, e := range entries {
			if e.ID == "" || len(e.Key) < MinKey || len(e.Key) > MaxKey {
				t.Fatalf("entry %q with a %d-byte key", e.ID, len(e.Key))
			}
			if strings.ContainsAny(e.ID, "\n") {
				t.Fatalf("identity %q spans lines", e.ID)
			}
		}
	})
}
