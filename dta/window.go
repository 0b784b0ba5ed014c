package dta

import (
	"fmt"
	"time"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// maxPermitAheadHours bounds the issuing window (a week).
const maxPermitAheadHours = 24 * dtawire.MaxPermitAheadDays

// dayStart returns the first instant of permit day d (UTC).
func dayStart(d uint64) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// permitIssuable reports whether the permit of day d may be issued at now:
// from yesterday (a client whose clock is a little behind) to today +
// PermitAhead days, and a day that has not begun only within the last
// PermitAheadHours before it does. why explains a refusal.
func (s *Server) permitIssuable(d uint64, now time.Time) (ok bool, why string) {
	today := pairing.Day(now)
	if d == 0 || d+1 < today || d > today+uint64(s.cfg.PermitAhead) {
		return false, fmt.Sprintf("day %d (%s) is outside %s..%s (yesterday to today+%d)", d, pairing.FormatDay(d),
			pairing.FormatDay(today-1), pairing.FormatDay(today+uint64(s.cfg.PermitAhead)), s.cfg.PermitAhead)
	}
	if d <= today {
		return true, ""
	}
	from := dayStart(d).Add(-time.Duration(s.cfg.PermitAheadHours) * time.Hour)
	if now.Before(from) {
		return false, fmt.Sprintf("the permit for %s is issued from %s (%d hours before the day starts), not yet",
			pairing.FormatDay(d), from.Format("2006-01-02 15:04 MST"), s.cfg.PermitAheadHours)
	}
	return true, ""
}
