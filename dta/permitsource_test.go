package dta

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/internal/admission"
	"github.com/milagro-go/milagro/pairing"
)

// TestPermitSourceThroughMidnight: a client whose clock is injected starts
// a minute before midnight with today's and tomorrow's permits, connects
// every 10 s of its time through midnight (server clock = client clock,
// permits required) with no failed handshake, and fetches the day after
// tomorrow's permit from the D-TAs on its own once the day has turned.
func TestPermitSourceThroughMidnight(t *testing.T) {
	realToday := pairing.Day(time.Now())
	// The D-TAs run on real time with permit-ahead 2, so that the
	// client's day after tomorrow (real today + 2) is in their window.
	var dtas []*testDTA
	for range 3 {
		dtas = append(dtas, startDTAAhead(t, nil, 2))
	}
	ctx := context.Background()
	e, err := dtaclient.Enroll(ctx, nil, codesFor(t, dtas, dtawire.KindClient, "night-owl"))
	if err != nil {
		t.Fatal(err)
	}
	srvE, err := dtaclient.Enroll(ctx, nil, codesFor(t, dtas, dtawire.KindServer, "api.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	key, server := e.Key.(*pairing.CSClientKey), srvE.Key.(*pairing.CSServerSecret)
	if len(e.Permits) != 3 { // today..today+2
		t.Fatalf("enrollment permits: %v", slices.Sorted(maps.Keys(e.Permits)))
	}
	clock := admission.NewFakeClock(time.Unix(int64(realToday+1)*86400-60, 0)) // 23:59:00 of real today
	reg := prometheus.NewRegistry()
	src, err := dtaclient.NewPermitSource(dtaclient.PermitSourceConfig{
		Renewal: e.Renewal, Now: clock.Now, Logger: quietLogger(), Registerer: reg, PermitAheadHours: 48,
		After: func(d time.Duration) <-chan time.Time { return time.After(min(d, 5*time.Millisecond)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Add(e.Permits[realToday], e.Permits[realToday+1]); err != nil {
		t.Fatal(err)
	}
	if h := src.Horizon(); h != 1 {
		t.Fatalf("horizon %d, want 1", h)
	}
	if err := src.Health(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go src.Run(runCtx)

	for i := 0; i <= 12; i++ { // 23:59:00 … 00:01:00
		now := clock.Now()
		tp, err := src.GetCSPermit(pairing.Day(now))
		if err != nil {
			t.Fatalf("%s: %v", now.UTC().Format(time.TimeOnly), err)
		}
		if err := csHandshake(key, tp, server, now, pairing.PermitsRequired); err != nil {
			t.Fatalf("handshake at %s: %v", now.UTC().Format(time.TimeOnly), err)
		}
		clock.Advance(10 * time.Second)
	}
	// After midnight the source fetches the new tomorrow on its own.
	deadline := time.Now().Add(20 * time.Second)
	for src.Horizon() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if h := src.Horizon(); h != 1 {
		t.Fatalf("after midnight: horizon %d, want 1 (today and tomorrow)", h)
	}
	tp, err := src.GetCSPermit(realToday + 2)
	if err != nil || !tp.Equal(e.Permits[realToday+2]) {
		t.Fatalf("fetched permit for the new tomorrow: %v", err)
	}
	if v := metricValue(t, reg, "mtls_permit_horizon_days", ""); v != 1 {
		t.Fatalf("horizon gauge %v", v)
	}
	if _, err := src.GetCSPermit(realToday - 5); !errors.Is(err, dtaclient.ErrNoPermit) {
		t.Fatalf("old day: %v", err)
	}
}
