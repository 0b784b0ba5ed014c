package dta

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
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
		opt := &dtaclient.ClientOptions{Now: now}
		srvE, err := dtaclient.Enroll(ctx, opt, codesFor(t, []*testDTA{d}, dtawire.KindServer, "api"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := dtaclient.Enroll(ctx, opt, codesFor(t, []*testDTA{d}, dtawire.KindClient, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Permits) != 1 || e.Permits[day] == nil {
			t.Fatalf("ahead %d: enrollment at 12:00 returned permits for days %v, want today only", ahead, slices.Sorted(maps.Keys(e.Permits)))
		}
		info, err := dtaclient.Info(ctx, opt, d.addr, &e.Renewal.DTAs[0])
		if err != nil || info.PermitAheadHours != dtawire.DefaultPermitAheadHours {
			t.Fatalf("info: %+v %v", info, err)
		}
		for dd := day + 1; dd <= day+uint64(ahead); dd++ {
			if _, _, err := dtaclient.FetchPermits(ctx, opt, e.Renewal, []uint64{dd}); !dtaclient.IsCode(err, dtawire.CodeDayOutOfRange) {
				t.Fatalf("ahead %d: day+%d at 12:00: %v, want day_out_of_range", ahead, dd-day, err)
			}
		}
		// Bob, not revoked, gets tomorrow's at 18:00 (and enrolling then
		// returns it too).
		clock.Store(at(18, 0).UnixNano())
		bob, err := dtaclient.Enroll(ctx, opt, codesFor(t, []*testDTA{d}, dtawire.KindClient, "bob"))
		if err != nil || bob.Permits[day+1] == nil {
			t.Fatalf("enrollment at 18:00: %v %v", slices.Sorted(maps.Keys(bob.Permits)), err)
		}
		// Alice is revoked at 17:59 (clock set back for the operator).
		clock.Store(at(17, 59).UnixNano())
		if err := d.store.Revoke(dtawire.KindClient, "alice", "lost", "test"); err != nil {
			t.Fatal(err)
		}
		clock.Store(at(18, 0).UnixNano())
		if _, _, err := dtaclient.FetchPermits(ctx, opt, e.Renewal, []uint64{day + 1}); !dtaclient.IsCode(err, dtawire.CodeRevoked) {
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
