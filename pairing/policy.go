package pairing

import (
	"fmt"
	"strconv"
	"time"
)

// DefaultClockSkew is the default allowed difference between client and
// server clocks (docs/protocol.md §3.2).
const DefaultClockSkew = 30 * time.Second

// Day returns the permit day of t: whole days since 1970-01-01 UTC.
func Day(t time.Time) uint64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return uint64(s / 86400)
}

// FormatDay formats a permit day as YYYY-MM-DD (UTC); a day too far out to
// be a date is written as its number.
func FormatDay(d uint64) string {
	if d > 1<<40 {
		return strconv.FormatUint(d, 10)
	}
	return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
}

// CheckTime returns ErrClockSkew unless |now − t| ≤ skew, t being the
// client's time in Unix seconds.
func CheckTime(now time.Time, t uint64, skew time.Duration) error {
	n := now.Unix()
	if n < 0 || t > 1<<62 {
		return ErrClockSkew
	}
	d := n - int64(t)
	if d < 0 {
		d = -d
	}
	if time.Duration(d) > skew/time.Second {
		return ErrClockSkew
	}
	return nil
}

// PermitMode is a server's policy on time permits (docs/protocol.md §3.2). Its zero
// value is PermitsRequired. No mode refuses a valid permit: a permit proves
// more, never less.
type PermitMode uint8

const (
	// PermitsRequired: every client sends a permit for an acceptable day.
	// Only this mode makes revocation by permits work.
	PermitsRequired PermitMode = iota
	// PermitsOptional: a client may send no permit (d = 0); one it sends
	// must be for an acceptable day. A migration mode while permits roll
	// out.
	PermitsOptional
)

// String returns "required" or "optional".
func (m PermitMode) String() string {
	switch m {
	case PermitsRequired:
		return "required"
	case PermitsOptional:
		return "optional"
	}
	return "PermitMode(" + strconv.Itoa(int(m)) + ")"
}

// ParsePermitMode parses "required" or "optional". "off" is accepted as
// "optional": a server whose permits are off accepts a client's valid
// permit (spec revision 3).
func ParsePermitMode(s string) (PermitMode, error) {
	switch s {
	case "optional", "off":
		return PermitsOptional, nil
	case "required":
		return PermitsRequired, nil
	}
	return 0, fmt.Errorf("pairing: permit mode %q: want required or optional", s)
}

// PermitDays returns the days a server accepts a permit for at now:
// {day(now − skew), day(now), day(now + skew)} without repeats (docs/protocol.md §3.2), so
// that around midnight both neighbouring days are accepted for skew seconds.
func PermitDays(now time.Time, skew time.Duration) []uint64 {
	out := make([]uint64, 0, 3)
	for _, t := range []time.Time{now.Add(-skew), now, now.Add(skew)} {
		d := Day(t)
		if d != 0 && (len(out) == 0 || out[len(out)-1] != d) {
			out = append(out, d)
		}
	}
	return out
}

// CheckPermitDay applies the permit policy of docs/protocol.md §3.2 to the day d of a
// ClientHello: required — d must be in PermitDays(now, skew); optional —
// d may also be 0. It returns ErrPermitDay otherwise.
func CheckPermitDay(now time.Time, d uint64, skew time.Duration, mode PermitMode) error {
	if d == 0 {
		if mode == PermitsOptional {
			return nil
		}
		return ErrPermitDay
	}
	for _, ok := range PermitDays(now, skew) {
		if d == ok {
			return nil
		}
	}
	return ErrPermitDay
}

// CheckHello applies both policy checks of docs/protocol.md §3.4 step 3 to a ClientHello:
// CheckTime (ErrClockSkew) and CheckPermitDay (ErrPermitDay). Call it
// before CSServer.Accept; Accept checks only the cryptography.
func CheckHello(h *CSHello, now time.Time, skew time.Duration, mode PermitMode) error {
	if h == nil {
		return ErrMismatch
	}
	if err := CheckTime(now, h.Time, skew); err != nil {
		return err
	}
	return CheckPermitDay(now, h.Day, skew, mode)
}
