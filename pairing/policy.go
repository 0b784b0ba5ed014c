package pairing

import "time"

// DefaultSkew is the default allowed difference between client and server
// clocks (spec §3).
const DefaultSkew = 30 * time.Second

// Day returns the permit day of t: whole days since 1970-01-01 UTC.
func Day(t time.Time) uint64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return uint64(s / 86400)
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

// CheckPermitDay applies spec §3's permit policy to the day d of a
// ClientHello: without permits d must be 0; with permits d must be today,
// or yesterday while now is within skew of the last midnight (UTC).
// It returns ErrPermitDay otherwise.
func CheckPermitDay(now time.Time, d uint64, skew time.Duration, permitsRequired bool) error {
	if !permitsRequired {
		if d != 0 {
			return ErrPermitDay
		}
		return nil
	}
	today := Day(now)
	if d == today && d != 0 {
		return nil
	}
	if d != 0 && d+1 == today && Day(now.Add(-skew)) == d {
		return nil
	}
	return ErrPermitDay
}

// CheckHello applies both policy checks of spec §3 step 3 to a ClientHello:
// CheckTime (ErrClockSkew) and CheckPermitDay (ErrPermitDay). Call it
// before CSServer.Accept; Accept checks only the cryptography.
func CheckHello(h *CSHello, now time.Time, skew time.Duration, permitsRequired bool) error {
	if h == nil {
		return ErrMismatch
	}
	if err := CheckTime(now, h.Time, skew); err != nil {
		return err
	}
	return CheckPermitDay(now, h.Day, skew, permitsRequired)
}
