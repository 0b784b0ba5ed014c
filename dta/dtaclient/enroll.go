package dtaclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// DTACode is one D-TA to enroll with: its address and the code it issued.
type DTACode struct {
	Address string
	Code    *dtawire.EnrollCode
}

// Enrollment is the result of Enroll: the combined key and permits, and
// the renewal credentials to keep.
type Enrollment struct {
	Kind     dtawire.Kind
	Identity string
	// Key is the combined key: *pairing.CSClientKey, *pairing.CSServerSecret
	// or *pairing.P2PKey.
	Key any
	// Shares are the D-TAs' shares, in the order of the codes (only for
	// callers that want to write them).
	Shares []any
	// Permits are the combined time permits (clients), by day.
	Permits map[uint64]*pairing.TimePermit
	Renewal *Renewal
}

// DTAError says which D-TA failed and why.
type DTAError struct {
	Address     string
	Fingerprint string
	Err         error
}

func (e *DTAError) Error() string {
	return fmt.Sprintf("D-TA %s at %s: %v", e.Fingerprint, e.Address, e.Err)
}
func (e *DTAError) Unwrap() error { return e.Err }

// MultiError collects the failures of several D-TAs.
type MultiError []*DTAError

func (m MultiError) Error() string {
	s := make([]string, len(m))
	for i, e := range m {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// Unwrap lets errors.Is/As see every D-TA's error.
func (m MultiError) Unwrap() []error {
	out := make([]error, len(m))
	for i, e := range m {
		out[i] = e
	}
	return out
}

// Failed lists the fingerprints of the D-TAs that failed.
func (m MultiError) Failed() []string {
	var s []string
	for _, e := range m {
		s = append(s, e.Fingerprint)
	}
	return s
}

// Enroll redeems one code at each D-TA, checks that every answer carries
// the fingerprint its code named (and that no D-TA repeats), and combines
// the shares. It first checks every code with GET /v1/info, so that no code
// is used up while another D-TA is down or refuses its code; any failure
// fails the enrollment (a key from fewer than all D-TAs does not work), and
// the error names each D-TA that failed.
func Enroll(ctx context.Context, opt *ClientOptions, codes []DTACode) (*Enrollment, error) {
	if len(codes) == 0 {
		return nil, errNoDTAs
	}
	if len(codes) > maxRenewalDTAs {
		return nil, fmt.Errorf("dta: at most %d D-TAs", maxRenewalDTAs)
	}
	seen := map[pairing.Fingerprint]bool{}
	for _, c := range codes {
		if c.Code == nil || c.Address == "" || len(c.Address) > maxAddrLen {
			return nil, errors.New("dta: each D-TA needs an address and a code")
		}
		if seen[c.Code.DTA] {
			return nil, fmt.Errorf("dta: two codes name D-TA %s: each D-TA must be a different one", c.Code.DTA)
		}
		seen[c.Code.DTA] = true
	}
	// Pre-flight: every D-TA must be up and accept its code (GET /v1/info
	// needs an unused, unexpired code) before any code is used up, so one
	// D-TA down or one wrong code does not waste the others.
	if err := preflight(ctx, opt, codes); err != nil {
		return nil, err
	}
	resps := make([]*dtawire.EnrollResponse, len(codes))
	errs := make([]error, len(codes))
	var wg sync.WaitGroup
	for i, c := range codes {
		wg.Go(func() {
			var out dtawire.EnrollResponse
			cr := Credential{Identity: "enroll:" + c.Code.ID.String(), PSK: c.Code.Secret[:]}
			if err := Call(ctx, opt, c.Address, cr, http.MethodPost, "/v1/enroll", struct{}{}, &out); err != nil {
				errs[i] = err
				return
			}
			if out.Fingerprint != c.Code.DTA.String() {
				errs[i] = fmt.Errorf("answered as D-TA %q, but the code is for D-TA %s: refusing its share", printableMsg([]byte(out.Fingerprint)), c.Code.DTA)
				return
			}
			resps[i] = &out
		})
	}
	wg.Wait()
	var me MultiError
	for i, err := range errs {
		if err != nil {
			me = append(me, &DTAError{Address: codes[i].Address, Fingerprint: codes[i].Code.DTA.String(), Err: err})
		}
	}
	if me != nil {
		return nil, me
	}
	first := resps[0]
	kind, err := dtawire.ParseKind(string(first.Kind))
	if err != nil {
		return nil, err
	}
	e := &Enrollment{Kind: kind, Identity: first.Identity, Permits: map[uint64]*pairing.TimePermit{},
		Renewal: &Renewal{Version: renewalVersion, Kind: kind, Identity: first.Identity}}
	permitShares := map[uint64][]*pairing.TimePermit{}
	for i, r := range resps {
		c := codes[i]
		fail := func(err error) (*Enrollment, error) {
			return nil, &DTAError{Address: c.Address, Fingerprint: c.Code.DTA.String(), Err: err}
		}
		if r.Kind != kind || r.Identity != first.Identity {
			return fail(fmt.Errorf("issued a share for %s %q, another D-TA for %s %q: the codes do not belong together", r.Kind, printableMsg([]byte(r.Identity)), kind, printableMsg([]byte(first.Identity))))
		}
		share, err := dtawire.DecodeShare(kind, c.Code.DTA, r.Identity, r.Share)
		if err != nil {
			return fail(err)
		}
		e.Shares = append(e.Shares, share)
		if _, err := dtawire.DecodeSecret(r.RenewalSecret); err != nil {
			return fail(fmt.Errorf("renewal secret: %w", err))
		}
		if len(r.Permits) > dtawire.MaxDaysPerRequest {
			return fail(errors.New("too many permits"))
		}
		for _, p := range r.Permits {
			tp, err := dtawire.DecodePermit(c.Code.DTA, r.Identity, p)
			if err != nil {
				return fail(err)
			}
			permitShares[p.Day] = append(permitShares[p.Day], tp)
		}
		e.Renewal.DTAs = append(e.Renewal.DTAs, RenewalDTA{Address: c.Address, Fingerprint: c.Code.DTA.String(),
			Kind: kind, Identity: r.Identity, Secret: r.RenewalSecret})
	}
	if e.Key, err = combine(kind, e.Shares); err != nil {
		return nil, err
	}
	// A permit only when every D-TA issued its share for that day.
	for d, ps := range permitShares {
		if len(ps) != len(codes) {
			continue
		}
		tp, err := pairing.CombineTimePermits(ps...)
		if err != nil {
			return nil, fmt.Errorf("dta: permits for %s: %w", dtawire.FormatDays([]uint64{d}), err)
		}
		e.Permits[d] = tp
	}
	return e, nil
}

func preflight(ctx context.Context, opt *ClientOptions, codes []DTACode) error {
	errs := make([]error, len(codes))
	var wg sync.WaitGroup
	for i, c := range codes {
		wg.Go(func() {
			var info dtawire.InfoResponse
			cr := Credential{Identity: "enroll:" + c.Code.ID.String(), PSK: c.Code.Secret[:]}
			if err := Call(ctx, opt, c.Address, cr, http.MethodGet, "/v1/info", nil, &info); err != nil {
				var ae *ciphersuite.AlertError
				if errors.As(err, &ae) && ae.Alert == ciphersuite.AlertUnknownPSKIdentity {
					err = fmt.Errorf("the D-TA answering at %s does not know code %s (%w): the code belongs to D-TA %s; is %s that D-TA's address? (its operator's `mtls ta list` shows its fingerprint)",
						c.Address, c.Code.ID, err, c.Code.DTA, c.Address)
				}
				errs[i] = err
				return
			}
			if info.Fingerprint != c.Code.DTA.String() {
				errs[i] = fmt.Errorf("answered as D-TA %q, but the code is for D-TA %s", printableMsg([]byte(info.Fingerprint)), c.Code.DTA)
			}
		})
	}
	wg.Wait()
	var me MultiError
	for i, err := range errs {
		if err != nil {
			me = append(me, &DTAError{Address: codes[i].Address, Fingerprint: codes[i].Code.DTA.String(), Err: err})
		}
	}
	if me != nil {
		return me
	}
	return nil
}

func combine(kind dtawire.Kind, shares []any) (any, error) {
	switch kind {
	case dtawire.KindClient:
		ks := make([]*pairing.CSClientKey, len(shares))
		for i, s := range shares {
			ks[i] = s.(*pairing.CSClientKey)
		}
		return pairing.CombineCSClientKeys(ks...)
	case dtawire.KindServer:
		ks := make([]*pairing.CSServerSecret, len(shares))
		for i, s := range shares {
			ks[i] = s.(*pairing.CSServerSecret)
		}
		return pairing.CombineCSServerSecrets(ks...)
	default:
		ks := make([]*pairing.P2PKey, len(shares))
		for i, s := range shares {
			ks[i] = s.(*pairing.P2PKey)
		}
		return pairing.CombineP2PKeys(ks...)
	}
}

// callRenewal calls one D-TA with its renewal credential: the pending
// (rotated) secret first if there is one, falling back to the current one
// if the D-TA does not know it; a pending secret that worked becomes the
// current one in d (the caller saves the renewal file if changed is true).
func callRenewal(ctx context.Context, opt *ClientOptions, d *RenewalDTA, method, path string, body, out any) (changed bool, err error) {
	if d.PendingSecret != "" {
		c, err := d.Credential(true)
		if err != nil {
			return false, err
		}
		err = Call(ctx, opt, d.Address, c, method, path, body, out)
		var he *HandshakeError
		if err == nil {
			d.Secret, d.PendingSecret = d.PendingSecret, ""
			return true, nil
		}
		if !errors.As(err, &he) {
			return false, err
		}
	}
	c, err := d.Credential(false)
	if err != nil {
		return false, err
	}
	return false, Call(ctx, opt, d.Address, c, method, path, body, out)
}

// FetchPermits fetches the permit shares for days from every D-TA of r and
// combines them. A permit is combined only from the shares of all D-TAs:
// if any D-TA fails, no permit is returned and the error (a MultiError)
// names each D-TA that failed. changed reports that r's secrets changed
// (a rotated secret was used): save r.
func FetchPermits(ctx context.Context, opt *ClientOptions, r *Renewal, days []uint64) (permits map[uint64]*pairing.TimePermit, changed bool, err error) {
	if r.Kind != dtawire.KindClient {
		return nil, false, fmt.Errorf("dta: permits are for CS clients; this renewal file is for a %s", r.Kind)
	}
	if len(r.DTAs) == 0 {
		return nil, false, errNoDTAs
	}
	shares := make([][]*pairing.TimePermit, len(r.DTAs))
	errs := make([]error, len(r.DTAs))
	chg := make([]bool, len(r.DTAs))
	var wg sync.WaitGroup
	for i := range r.DTAs {
		wg.Go(func() {
			d := &r.DTAs[i]
			fp, err := pairing.ParseFingerprint(d.Fingerprint)
			if err != nil {
				errs[i] = err
				return
			}
			var out dtawire.PermitsResponse
			chg[i], err = callRenewal(ctx, opt, d, http.MethodPost, "/v1/permits", dtawire.PermitsRequest{Days: days}, &out)
			if err != nil {
				errs[i] = err
				return
			}
			got := map[uint64]*pairing.TimePermit{}
			for _, p := range out.Permits {
				tp, err := dtawire.DecodePermit(fp, r.Identity, p)
				if err != nil {
					errs[i] = err
					return
				}
				got[p.Day] = tp
			}
			for _, day := range days {
				if got[day] == nil {
					errs[i] = fmt.Errorf("no permit for %s in the answer", dtawire.FormatDays([]uint64{day}))
					return
				}
				shares[i] = append(shares[i], got[day])
			}
		})
	}
	wg.Wait()
	for _, c := range chg {
		changed = changed || c
	}
	var me MultiError
	for i, err := range errs {
		if err != nil {
			me = append(me, &DTAError{Address: r.DTAs[i].Address, Fingerprint: r.DTAs[i].Fingerprint, Err: err})
		}
	}
	if me != nil {
		return nil, changed, me
	}
	permits = map[uint64]*pairing.TimePermit{}
	for j, day := range days {
		ps := make([]*pairing.TimePermit, len(r.DTAs))
		for i := range r.DTAs {
			ps[i] = shares[i][j]
		}
		tp, err := pairing.CombineTimePermits(ps...)
		if err != nil {
			return nil, changed, fmt.Errorf("dta: permit for %s: %w", dtawire.FormatDays([]uint64{day}), err)
		}
		permits[day] = tp
	}
	return permits, changed, nil
}

// Rotate asks every D-TA for a fresh renewal secret and records it as
// pending in r (used, and made current, by the next call). Save r after.
// D-TAs that fail keep their current secret; the error names them.
func Rotate(ctx context.Context, opt *ClientOptions, r *Renewal) error {
	errs := make([]error, len(r.DTAs))
	var wg sync.WaitGroup
	for i := range r.DTAs {
		wg.Go(func() {
			d := &r.DTAs[i]
			var out dtawire.RenewResponse
			if _, err := callRenewal(ctx, opt, d, http.MethodPost, "/v1/renew", struct{}{}, &out); err != nil {
				errs[i] = err
				return
			}
			if _, err := dtawire.DecodeSecret(out.RenewalSecret); err != nil {
				errs[i] = err
				return
			}
			d.PendingSecret = out.RenewalSecret
		})
	}
	wg.Wait()
	var me MultiError
	for i, err := range errs {
		if err != nil {
			me = append(me, &DTAError{Address: r.DTAs[i].Address, Fingerprint: r.DTAs[i].Fingerprint, Err: err})
		}
	}
	if me != nil {
		return me
	}
	return nil
}

// sortedDays returns the keys of m in order.
func sortedDays(m map[uint64]*pairing.TimePermit) []uint64 {
	var out []uint64
	for d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
