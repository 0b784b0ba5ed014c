package dtawire

import (
	"strings"
	"testing"
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
			if len(req.Days) == 0 || len(req.Days) > MaxDaysPerRequest {
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
		DecodeStrict(strings.NewReader(string(b)), MaxBodySize, &v)
	})
}
