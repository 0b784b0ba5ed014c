package pairing

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// A LabeledKey is a key, secret, permit, PIN token or master share of this
// package with the name it is known by (a file name, typically), for the
// errors of CheckShares, CombineShares and CheckPermitsForKey.
type LabeledKey struct {
	Label string
	Key   any
}

// keyFacts is what the share checks compare of a key.
type keyFacts struct {
	kind  string // for people: "CS client key", "time permit", ...
	id    string
	day   uint64 // time permits only
	share bool
	dtas  []Fingerprint
}

// Kind names the kind of a key of this package for messages: "CS client
// key", "CS server secret", "P2P key", "time permit", "PIN token" or
// "master share"; "" for anything else (a nil key included).
func Kind(key any) string {
	f, ok := factsOf(key)
	if !ok {
		return ""
	}
	return f.kind
}

func factsOf(key any) (keyFacts, bool) {
	switch k := key.(type) {
	case *CSClientKey:
		if k != nil {
			return keyFacts{"CS client key", k.id, 0, k.share, k.dtas}, true
		}
	case *CSServerSecret:
		if k != nil {
			return keyFacts{"CS server secret", k.id, 0, k.share, k.dtas}, true
		}
	case *P2PKey:
		if k != nil {
			return keyFacts{"P2P key", k.id, 0, k.share, k.dtas}, true
		}
	case *TimePermit:
		if k != nil {
			return keyFacts{"time permit", k.id, k.day, k.share, k.dtas}, true
		}
	case *PINToken:
		if k != nil {
			return keyFacts{"PIN token", k.id, 0, k.share, k.dtas}, true
		}
	case *MasterShare:
		if k != nil {
			return keyFacts{"master share", "", 0, false, []Fingerprint{k.Fingerprint()}}, true
		}
	}
	return keyFacts{}, false
}

// sameShare reports whether a and b, of one type, hold the same value.
func sameShare(a, b any) bool {
	switch x := a.(type) {
	case *CSClientKey:
		return x.Equal(b.(*CSClientKey))
	case *CSServerSecret:
		return x.Equal(b.(*CSServerSecret))
	case *P2PKey:
		return x.Equal(b.(*P2PKey))
	case *TimePermit:
		return x.Equal(b.(*TimePermit))
	}
	return false
}

// CheckShares reports why shares cannot be combined into one key, naming
// them by label: each must be one D-TA's share (not a combined key, a PIN
// token or a master share, which is never combined), all of one kind and
// identity (and day, for permits), from different D-TAs, none given twice.
// The errors wrap ErrMismatch or ErrDuplicateDTA.
func CheckShares(shares []LabeledKey) error {
	if len(shares) == 0 {
		return labeledErr(ErrMismatch, "no shares: give the share of every D-TA")
	}
	facts := make([]keyFacts, len(shares))
	for i, s := range shares {
		f, ok := factsOf(s.Key)
		if !ok {
			return labeledErr(ErrMismatch, "%s is a %T, not a key of package pairing", s.Label, s.Key)
		}
		facts[i] = f
	}
	first, f0 := shares[0], facts[0]
	switch f0.kind {
	case "master share":
		return labeledErr(ErrMismatch, "%s is a master share: master shares are never combined (the master secret must exist nowhere); combine the keys they issue", first.Label)
	case "PIN token":
		return labeledErr(ErrMismatch, "%s is a PIN token: combine the key shares first, then make the token", first.Label)
	}
	seen := map[Fingerprint]string{}
	for i, s := range shares {
		f := facts[i]
		if !f.share {
			return labeledErr(ErrMismatch, "%s is already a combined key (of D-TAs %s), not one D-TA's share", s.Label, FormatFingerprints(f.dtas))
		}
		for _, fp := range f.dtas {
			if prev, ok := seen[fp]; ok {
				return labeledErr(ErrDuplicateDTA, "%s and %s are both from D-TA %s: give one share from each D-TA", prev, s.Label, fp)
			}
			seen[fp] = s.Label
		}
	}
	for i := 1; i < len(shares); i++ {
		s, f := shares[i], facts[i]
		switch {
		case f.kind != f0.kind:
			return labeledErr(ErrMismatch, "cannot combine different kinds of keys: %s is a %s, %s is a %s", first.Label, f0.kind, s.Label, f.kind)
		case f.id != f0.id:
			return labeledErr(ErrMismatch, "cannot combine keys of different identities: %s is for %q, %s is for %q", first.Label, f0.id, s.Label, f.id)
		case f.day != f0.day:
			return labeledErr(ErrMismatch, "cannot combine permits for different days: %s is for %s, %s is for %s", first.Label, FormatDay(f0.day), s.Label, FormatDay(f.day))
		}
		for _, o := range shares[:i] {
			if sameShare(o.Key, s.Key) {
				return labeledErr(ErrDuplicateDTA, "%s and %s hold the same share: give one share from each D-TA", o.Label, s.Label)
			}
		}
	}
	return nil
}

// CombineShares checks shares with CheckShares and adds them into one key
// of their kind: a *CSClientKey, *CSServerSecret, *P2PKey or *TimePermit.
func CombineShares(shares []LabeledKey) (any, error) {
	if err := CheckShares(shares); err != nil {
		return nil, err
	}
	switch shares[0].Key.(type) {
	case *CSClientKey:
		return CombineCSClientKeys(keysOf[*CSClientKey](shares)...)
	case *CSServerSecret:
		return CombineCSServerSecrets(keysOf[*CSServerSecret](shares)...)
	case *P2PKey:
		return CombineP2PKeys(keysOf[*P2PKey](shares)...)
	case *TimePermit:
		return CombineTimePermits(keysOf[*TimePermit](shares)...)
	}
	return nil, labeledErr(ErrMismatch, "%s: cannot combine a %s", shares[0].Label, Kind(shares[0].Key))
}

// keysOf returns the keys of shares, all of type T (CheckShares checked).
func keysOf[T any](shares []LabeledKey) []T {
	out := make([]T, len(shares))
	for i, s := range shares {
		out[i] = s.Key.(T)
	}
	return out
}

// ErrPermitKeyMismatch is wrapped by CheckPermitsForKey's errors.
var ErrPermitKeyMismatch = errors.New("pairing: time permits and key do not belong together")

// CheckPermitsForKey reports why permits (one D-TA's shares, or combined
// permits) do not belong to key, a combined CS client key or PIN token: a
// permit and its key come from the same D-TA set (docs/protocol.md §2), so
// the permits must be for the key's identity and, together, from exactly
// the key's D-TAs.
func CheckPermitsForKey(permits []LabeledKey, key LabeledKey) error {
	if len(permits) == 0 {
		return labeledErr(ErrPermitKeyMismatch, "no time permits")
	}
	var fps []Fingerprint
	var first keyFacts
	for i, p := range permits {
		f, ok := factsOf(p.Key)
		if !ok || f.kind != "time permit" {
			return labeledErr(ErrPermitKeyMismatch, "%s is a %s, not a time permit", p.Label, kindOrType(p.Key))
		}
		if i == 0 {
			first = f
		} else if f.id != first.id {
			return labeledErr(ErrPermitKeyMismatch, "%s is for %q, %s for %q", permits[0].Label, first.id, p.Label, f.id)
		}
		fps = append(fps, f.dtas...)
	}
	kf, ok := factsOf(key.Key)
	if !ok || (kf.kind != "CS client key" && kf.kind != "PIN token") {
		return labeledErr(ErrPermitKeyMismatch, "%s is a %s, not a CS client key or PIN token", key.Label, kindOrType(key.Key))
	}
	if kf.share {
		return labeledErr(ErrPermitKeyMismatch, "%s is a key share; give the combined key", key.Label)
	}
	if kf.id != first.id {
		return labeledErr(ErrPermitKeyMismatch, "the permits are for %q, the key %s for %q", first.id, key.Label, kf.id)
	}
	slices.SortFunc(fps, func(a, b Fingerprint) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(fps, kf.dtas) {
		return labeledErr(ErrPermitKeyMismatch, "the permits come from D-TAs %s, but the key %s from %s: get a permit share from each of the key's D-TAs",
			FormatFingerprints(fps), key.Label, FormatFingerprints(kf.dtas))
	}
	return nil
}

// labeledError is an error of the share checks: a message for a person
// (naming the keys by label) that unwraps to the sentinel it is a case of.
type labeledError struct {
	sentinel error
	msg      string
}

func (e *labeledError) Error() string { return e.msg }
func (e *labeledError) Unwrap() error { return e.sentinel }

func labeledErr(sentinel error, format string, args ...any) error {
	return &labeledError{sentinel, fmt.Sprintf(format, args...)}
}

func kindOrType(key any) string {
	if k := Kind(key); k != "" {
		return k
	}
	return fmt.Sprintf("%T", key)
}
