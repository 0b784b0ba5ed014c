package dtaclient

import (
	"strings"
	"testing"
)

func FuzzParseRenewal(f *testing.F) {
	sec := strings.Repeat("A", 43)
	f.Add([]byte(`{"version":1,"kind":"client","identity":"alice","dtas":[{"address":"127.0.0.1:1","fingerprint":"0011223344556677","kind":"client","identity":"alice","renewal_secret":"` + sec + `"}]}`))
	f.Add([]byte(`{"version":1,"kind":"server","identity":"","dtas":[{"address":"h:1","fingerprint":"0011223344556677","kind":"server","identity":"","renewal_secret":"` + sec + `","pending_secret":"` + sec + `"}]}`))
	f.Add([]byte(`{"version":1}{}`))
	f.Add([]byte(`{"version":1,"extra":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRenewal(b)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseRenewal(out)
		if err != nil {
			t.Fatalf("re-parse of a marshalled renewal file: %v", err)
		}
		if len(r2.DTAs) != len(r.DTAs) || r2.Identity != r.Identity || r2.Kind != r.Kind {
			t.Fatal("round trip changed the file")
		}
	})
}

func FuzzParseDeployment(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"dtas":[{"fingerprint":"0011223344556677","address":"dta1.example.com:7001"}]}`,
		`{"version":1,"dtas":[{"fingerprint":"0011223344556677","address":"a:1"},{"fingerprint":"0011223344556677","address":"b:1"}]}`,
		`{"version":2,"dtas":[]}`, `{"Version":1}`, `{"version":1,"dtas":[{"fingerprint":"00112233445566ZZ","address":"a:1"}]}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDeployment(b)
		if err != nil {
			return
		}
		out, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseDeployment(out); err != nil {
			t.Fatalf("a parsed deployment does not re-parse: %v", err)
		}
	})
}
