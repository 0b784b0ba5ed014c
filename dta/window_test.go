package dta

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

// TestRevocationFromNextMidnight: with the default window (tomorrow's
// permit only in the last 6 hours of today), an identity revoked before
// 18:00 UTC never gets tomorrow's permit, so it is refused from the next
// midnight; /v1/info reports the window; also with PermitAhead 7.
func TestRevocationFromNextMidnight(t *testing.T) {
	for _, ahead := range []int{1, 7} {
		var clock atomic.Int64
		day := uint64(20500)
		at := func(h, m int) time.Time {
			return dayStart(day).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
		}
		clock.Store(at(12, 0).UnixNano())
		now := func() time.Time { return time.Unix(0, clock.Load()) }
		d := startDTACfg(t, now, "NORMAL", ServerConfig{PermitAhead: ahead})
		ctx := context.Background()
		opt := &ClientOptions{Now: now}
		srvE, err := Enroll(ctx, opt, codesFor(t, []*testDTA{d}, KindServer, "api"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := Enroll(ctx, opt, codesFor(t, []*testDTA{d}, KindClient, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Permits) != 1 || e.Permits[day] == nil {
			t.Fatalf("ahead %d: enrollment at 12:00 returned permits for days %v, want today only", ahead, sortedDays(e.Permits))
		}
		info, err := Info(ctx, opt, d.addr, &e.Renewal.DTAs[0])
		if err != nil || info.PermitAheadHours != DefaultPermitAheadHours {
			t.Fatalf("info: %+v %v", info, err)
		}
		for dd := day + 1; dd <= day+uint64(ahead); dd++ {
			if _, _, err := FetchPermits(ctx, opt, e.Renewal, []uint64{dd}); !IsCode(err, CodeDayOutOfRange) {
				t.Fatalf("ahead %d: day+%d at 12:00: %v, want day_out_of_range", ahead, dd-day, err)
			}
		}
		// Bob, not revoked, gets tomorrow's at 18:00 (and enrolling then
		// returns it too).
		clock.Store(at(18, 0).UnixNano())
		bob, err := Enroll(ctx, opt, codesFor(t, []*testDTA{d}, KindClient, "bob"))
		if err != nil || bob.Permits[day+1] == nil {
			t.Fatalf("enrollment at 18:00: %v %v", sortedDays(bob.Permits), err)
		}
		// Alice is revoked at 17:59 (clock set back for the operator).
		clock.Store(at(17, 59).UnixNano())
		if err := d.store.Revoke(KindClient, "alice", "lost", "test"); err != nil {
			t.Fatal(err)
		}
		clock.Store(at(18, 0).UnixNano())
		if _, _, err := FetchPermits(ctx, opt, e.Renewal, []uint64{day + 1}); !IsCode(err, CodeRevoked) {
			t.Fatalf("revoked alice at 18:00: %v", err)
		}
		// At midnight + 1 h (past the neighbour-day skew) her only permit,
		// today's, no longer opens a connection.
		server := srvE.Key.(*pairing.CSServerSecret)
		key := e.Key.(*pairing.CSClientKey)
		if err := csHandshake(key, e.Permits[day], server, at(17, 0), pairing.PermitsRequired); err != nil {
			t.Fatalf("alice with today's permit during the day: %v", err)
		}
		if err := csHandshake(key, e.Permits[day], server, at(25, 0), pairing.PermitsRequired); err == nil {
			t.Fatal("alice, revoked at 17:59, was accepted an hour after the next midnight")
		}
	}
}

// TestPermitSourceWaitsForWindow: a permit source asks for tomorrow's
// permit only once the D-TAs issue it, and plans its next fetch then.
func TestPermitSourceWaitsForWindow(t *testing.T) {
	day := uint64(20500)
	clock := &fakeClock{t: dayStart(day).Add(12 * time.Hour)}
	var asked [][]uint64
	fetch := func(ctx context.Context, days []uint64) (map[uint64]*pairing.TimePermit, error) {
		asked = append(asked, days)
		return nil, &APIError{Status: http.StatusBadRequest, Code: CodeDayOutOfRange}
	}
	src, err := NewPermitSource(PermitSourceConfig{Fetch: fetch, Now: clock.Now, Logger: quietLogger(), MaxJitter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	src.Refresh(context.Background())
	if len(asked) != 1 || len(asked[0]) != 1 || asked[0][0] != day {
		t.Fatalf("at 12:00 the source asked for %v, want today only", asked)
	}
	src.mu.Lock()
	src.failures = 0
	src.mu.Unlock()
	if w := src.nextWait(clock.Now(), false); w < 6*time.Hour || w > 6*time.Hour+time.Minute {
		t.Fatalf("at 12:00 with everything due held, next fetch in %v, want 18:00 + jitter", w)
	}
	clock.Add(6 * time.Hour)
	src.Refresh(context.Background())
	if last := asked[len(asked)-1]; len(last) != 2 || last[1] != day+1 {
		t.Fatalf("at 18:00 the source asked for %v, want today and tomorrow", last)
	}
}
