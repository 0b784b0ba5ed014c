package dta

import (
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/milagro-go/milagro/pairing"
)

func FuzzParseEnrollCode(f *testing.F) {
	f.Add("mtls1-enroll:2168bb611df4593e:0bfb85a7aae9844d:RHCb87imRDVwBDAbjdbWdJfkUXK44BBYuf8-sruhelM")
	f.Add("mtls1-enroll:2168BB611DF4593E:0bfb85a7aae9844d:RHCb87imRDVwBDAbjdbWdJfkUXK44BBYuf8-sruhelM")
	f.Add("mtls1-enroll:::")
	f.Add("mtls1-enroll:2168bb611df4593e:0bfb85a7aae9844d:RHCb87imRDVwBDAbjdbWdJfkUXK44BBYuf8-sruhelN")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseEnrollCode(s)
		if err != nil {
			return
		}
		if c.String() != s {
			t.Fatalf("not canonical: %q parsed, %q written", s, c.String())
		}
	})
}

func FuzzParsePSKIdentity(f *testing.F) {
	for _, s := range []string{"enroll:0bfb85a7aae9844d", "renew:client:alice@example.com", "renew:server:", "renew:p2p:a:b:c",
		"renew:client:", "renew:client:a\x00b", "renew:x:y", "enroll:0BFB85A7AAE9844D", "renew:server:api.example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParsePSKIdentity(s)
		if err != nil {
			return
		}
		if id.String() != s {
			t.Fatalf("round trip: %q → %q", s, id.String())
		}
		if !id.Enroll {
			if err := CheckIdentity(id.Kind, id.Identity); err != nil {
				t.Fatalf("accepted a bad identity %q: %v", id.Identity, err)
			}
		}
	})
}

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

// FuzzRequestBodies feeds the API's request-body parsers (POST /v1/permits;
// the empty bodies of /v1/enroll and /v1/renew).
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{`{"days":[20000]}`, `{"days":[1,2,3,4,5,6,7,8,9]}`, `{"days":[1,1]}`, `{"days":[]}`,
		`{"days":[1]} {"days":[2]}`, `{"days":[1],"x":1}`, `{"Days":[1]}`, `{"days":[1],"days":[2]}`, `{}`, ``, `  `, `{"days":[-1]}`, `{"days":[1e30]}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParsePermitsRequest(b)
		if err == nil {
			if len(req.Days) == 0 || len(req.Days) > maxDaysPerRequest {
				t.Fatalf("accepted %d days", len(req.Days))
			}
			seen := map[uint64]bool{}
			for _, d := range req.Days {
				if seen[d] {
					t.Fatal("accepted a repeated day")
				}
				seen[d] = true
			}
		}
		var v struct{}
		decodeStrict(strings.NewReader(string(b)), maxBodySize, &v)
	})
}

// FuzzResponses feeds what a D-TA could answer to the enrollment client's
// decoders (a hostile D-TA must not crash or fool an endpoint).
func FuzzResponses(f *testing.F) {
	m, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	share, _ := issueShare(m, KindClient, "alice")
	p2p, _ := issueShare(m, KindP2P, "alice")
	srv, _ := issueShare(m, KindServer, "")
	permit, _ := issuePermit(m, "alice", 20000)
	for _, s := range []struct {
		kind  string
		share string
	}{{"client", share}, {"p2p", p2p}, {"server", srv}, {"client", permit.Share}, {"server", share}} {
		b, _ := json.Marshal(EnrollResponse{Kind: Kind(s.kind), Identity: "alice", Share: s.share, Permits: []PermitJSON{permit}})
		f.Add(b)
	}
	fp := m.Fingerprint()
	f.Fuzz(func(t *testing.T, b []byte) {
		var r EnrollResponse
		if json.Unmarshal(b, &r) != nil {
			return
		}
		if k, err := DecodeShare(r.Kind, fp, r.Identity, r.Share); err == nil {
			switch v := k.(type) {
			case *pairing.CSClientKey:
				if !v.IsShare() || v.DTAs()[0] != fp {
					t.Fatal("decoded share lost its origin")
				}
			case *pairing.CSServerSecret, *pairing.P2PKey:
			default:
				t.Fatalf("unexpected %T", k)
			}
		}
		for _, p := range r.Permits {
			if tp, err := DecodePermit(fp, r.Identity, p); err == nil && (tp.Day() != p.Day || !tp.IsShare()) {
				t.Fatal("decoded permit differs")
			}
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
